from django.urls import path

from datasets_app.consumers import DatasetProgressConsumer

websocket_urlpatterns = [
    path("ws/datasets/<uuid:dataset_id>/", DatasetProgressConsumer.as_asgi()),
]
