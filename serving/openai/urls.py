"""The OpenAI-compatible API, mounted at /v1/ (studio/urls.py).

No trailing slashes: OpenAI clients append "/models", "/chat/completions" to
their base URL. Model names contain ":" (fine-tuned ones), hence `path:`.
"""

from django.urls import path, re_path

from serving.openai import files, fine_tuning, http, inference

urlpatterns = [
    path("models", inference.models_list, name="openai-models"),
    path("models/<path:model>", inference.model_detail, name="openai-model"),
    path("chat/completions", inference.chat_completions, name="openai-chat-completions"),
    path("completions", inference.completions, name="openai-completions"),
    path("files", files.files, name="openai-files"),
    path("files/<str:file_id>", files.file_detail, name="openai-file"),
    path("files/<str:file_id>/content", files.file_content, name="openai-file-content"),
    path("fine_tuning/jobs", fine_tuning.fine_tuning_jobs, name="openai-fine-tuning-jobs"),
    path(
        "fine_tuning/jobs/<str:job_id>",
        fine_tuning.fine_tuning_job,
        name="openai-fine-tuning-job",
    ),
    path(
        "fine_tuning/jobs/<str:job_id>/cancel",
        fine_tuning.fine_tuning_job_cancel,
        name="openai-fine-tuning-job-cancel",
    ),
    path(
        "fine_tuning/jobs/<str:job_id>/events",
        fine_tuning.fine_tuning_job_events,
        name="openai-fine-tuning-job-events",
    ),
    path(
        "fine_tuning/jobs/<str:job_id>/checkpoints",
        fine_tuning.fine_tuning_job_checkpoints,
        name="openai-fine-tuning-job-checkpoints",
    ),
    # Last: anything else under /v1/ is answered in OpenAI's shape too.
    re_path(r"^.*$", http.unknown_endpoint),
]
