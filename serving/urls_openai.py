"""The OpenAI-compatible API, mounted at /v1/ (see serving/openai_api.py).

No trailing slashes: OpenAI clients append "/models", "/chat/completions" to
their base URL. Model names contain ":" (fine-tuned ones), hence `path:`.
"""

from django.urls import path, re_path

from serving import openai_api

urlpatterns = [
    path("models", openai_api.models_list, name="openai-models"),
    path("models/<path:model>", openai_api.model_detail, name="openai-model"),
    path("chat/completions", openai_api.chat_completions, name="openai-chat-completions"),
    path("completions", openai_api.completions, name="openai-completions"),
    # Last: anything else under /v1/ is answered in OpenAI's shape too.
    re_path(r"^.*$", openai_api.unknown_endpoint),
]
