"""What the playground page shows besides the answers: its recent prompts,
and a refused request's errors in the page's words.

The request itself is checked by `generations.check_request`, whose
sentences name the API's field paths ("messages: write a user message."),
as API clients need. The page has a form, not a JSON document: its errors
sit under the form's fields and read as plain sentences.
"""

from __future__ import annotations

from serving.models import Generation
from serving.services import generations

# API field -> (the page's field, the words the page calls it by).
PAGE_FIELDS = {
    "max_new_tokens": ("max_new_tokens", "Max new tokens"),
    "temperature": ("temperature", "Temperature"),
    "top_p": ("top_p", "Top-p"),
    "seed": ("seed", "Seed"),
}
# What the page says instead of the API's sentence about its `messages`,
# which the page builds from its system and user message fields.
PAGE_SENTENCES = {
    "messages: write a user message.": "Write a message first.",
    f"messages: at most {generations.MAX_PROMPT_CHARACTERS:,} characters in all.": (
        f"The system and user messages may have at most "
        f"{generations.MAX_PROMPT_CHARACTERS:,} characters together."
    ),
}


def page_errors(errors: dict[str, str]) -> dict[str, str]:
    """A refused request's {API field: sentence} as {page field: plain sentence}."""
    shown: dict[str, str] = {}
    for field, message in errors.items():
        fragment = message.removeprefix(f"{field}: ")
        if field.startswith("messages"):
            page_field = "prompt"
            sentence = PAGE_SENTENCES.get(message, fragment[:1].upper() + fragment[1:])
        elif field in PAGE_FIELDS and fragment != message:
            page_field, words = PAGE_FIELDS[field]
            sentence = f"{words} {fragment}"
        else:
            page_field, sentence = field, message
        shown.setdefault(page_field, sentence)
    return shown


def recent_prompts(user) -> tuple[list[Generation], dict[str, dict]]:
    """The user's latest playground prompts, and what the page needs to ask each again."""
    recent = generations.recent_prompts(user)
    again = {
        str(g.pk): {
            "base": g.base_model_id,
            "models": g.model_names,
            "system": g.system_prompt,
            "prompt": g.prompt_preview if g.messages else "",
            "text": g.text,
            "params": g.params,
        }
        for g in recent
    }
    return recent, again
