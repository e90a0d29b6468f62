from django.urls import path

from datasets_app import views

urlpatterns = [
    path("datasets/", views.dataset_list, name="datasets"),
]
