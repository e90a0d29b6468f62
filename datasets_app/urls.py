from django.urls import path

from datasets_app import views

urlpatterns = [
    path("datasets/", views.dataset_list, name="datasets"),
    path("datasets/upload/", views.dataset_upload, name="dataset-upload"),
    path("datasets/samples/<slug:slug>/", views.dataset_from_sample, name="dataset-sample"),
    path("datasets/<uuid:dataset_id>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<uuid:dataset_id>/preview/", views.dataset_preview, name="dataset-preview"),
    path("datasets/<uuid:dataset_id>/rename/", views.dataset_rename, name="dataset-rename"),
    path("datasets/<uuid:dataset_id>/settings/", views.dataset_settings, name="dataset-settings"),
    path(
        "datasets/<uuid:dataset_id>/skip-invalid-rows/",
        views.dataset_skip_invalid_rows,
        name="dataset-skip-invalid-rows",
    ),
    path("datasets/<uuid:dataset_id>/delete/", views.dataset_delete, name="dataset-delete"),
]
