from django.urls import path

from serving import preference_views, views

urlpatterns = [
    path("playground/", views.playground, name="playground"),
    path("playground/generations/<uuid:generation_id>/vote/", views.vote, name="playground-vote"),
    path(
        "playground/preference-dataset/",
        preference_views.preference_dataset,
        name="playground-preference-dataset",
    ),
    path("jobs/<uuid:job_id>/evaluation/", views.job_evaluation, name="job-evaluation"),
    path("jobs/<uuid:job_id>/evaluate/", views.job_evaluate, name="job-evaluate"),
]
