from django.urls import path

from jobs.consumers import JobListConsumer, JobLiveConsumer

websocket_urlpatterns = [
    path("ws/jobs/", JobListConsumer.as_asgi()),
    path("ws/jobs/<uuid:job_id>/", JobLiveConsumer.as_asgi()),
]
