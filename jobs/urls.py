from django.urls import path

from jobs import views

urlpatterns = [
    path("jobs/", views.job_list, name="jobs"),
    path("models/", views.model_list, name="models"),
]
