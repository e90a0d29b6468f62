"""The OpenAI-compatible API, mounted at /v1/ (see serving/openai_api.py and
serving/openai_finetune.py).

No trailing slashes: OpenAI clients append "/models", "/chat/completions" to
their base URL. Model names contain ":" (fine-tuned ones), hence `path:`.
"""

from django.urls import path, re_path

from serving import openai_api, openai_finetune

urlpatterns = [
    path("models", openai_api.models_list, name="openai-models"),
    path("models/<path:model>", openai_api.model_detail, name="openai-model"),
    path("chat/completions", openai_api.chat_completions, name="openai-chat-completions"),
    path("completions", openai_api.completions, name="openai-completions"),
    path("files", openai_finetune.files, name="openai-files"),
    path("files/<str:file_id>", openai_finetune.file_detail, name="openai-file"),
    path("files/<str:file_id>/content", openai_finetune.file_content, name="openai-file-content"),
    path("fine_tuning/jobs", openai_finetune.fine_tuning_jobs, name="openai-fine-tuning-jobs"),
    path(
        "fine_tuning/jobs/<str:job_id>",
        openai_finetune.fine_tuning_job,
        name="openai-fine-tuning-job",
    ),
    path(
        "fine_tuning/jobs/<str:job_id>/cancel",
        openai_finetune.fine_tuning_job_cancel,
        name="openai-fine-tuning-job-cancel",
    ),
    path(
        "fine_tuning/jobs/<str:job_id>/events",
        openai_finetune.fine_tuning_job_events,
        name="openai-fine-tuning-job-events",
    ),
    path(
        "fine_tuning/jobs/<str:job_id>/checkpoints",
        openai_finetune.fine_tuning_job_checkpoints,
        name="openai-fine-tuning-job-checkpoints",
    ),
    # Last: anything else under /v1/ is answered in OpenAI's shape too.
    re_path(r"^.*$", openai_api.unknown_endpoint),
]
