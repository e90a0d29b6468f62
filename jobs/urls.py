from django.urls import path

from jobs import compare_views, merge_views, organise_views, sweep_views, views

urlpatterns = [
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/new/", views.job_new, name="job-new"),
    path("jobs/new/preview/", views.job_preview, name="job-preview"),
    path("jobs/new/upload/", views.job_upload, name="job-upload"),
    path("jobs/compare/", compare_views.job_compare, name="jobs-compare"),
    path("jobs/merge/", merge_views.merge_new, name="job-merge"),
    path("sweeps/", sweep_views.sweep_list, name="sweeps"),
    path("sweeps/new/", sweep_views.sweep_new, name="sweep-new"),
    path("sweeps/<uuid:sweep_id>/", sweep_views.sweep_detail, name="sweep-detail"),
    path("sweeps/<uuid:sweep_id>/cancel/", sweep_views.sweep_cancel, name="sweep-cancel"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<uuid:job_id>/row/", views.job_row, name="job-row"),
    path("jobs/<uuid:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<uuid:job_id>/retry/", views.job_retry, name="job-retry"),
    path("jobs/<uuid:job_id>/resume/", views.job_resume, name="job-resume"),
    path("jobs/<uuid:job_id>/delete/", views.job_delete, name="job-delete"),
    path("jobs/<uuid:job_id>/export/", views.job_export, name="job-export"),
    path("jobs/<uuid:job_id>/star/", organise_views.job_star, name="job-star"),
    path("jobs/<uuid:job_id>/organise/", organise_views.job_organise, name="job-organise"),
    path("jobs/<uuid:job_id>/config.yaml", views.job_config, name="job-config"),
    path("jobs/<uuid:job_id>/adapter.zip", views.job_adapter, name="job-adapter"),
    path("jobs/<uuid:job_id>/merged.zip", views.job_merged, name="job-merged"),
    path("models/", views.model_list, name="models"),
]
