"""What serving tells people when a request fails, as data: a reason, the few
values its sentence needs, and the one table that turns the reason into the
sentence.

A sentence is for everyone, so it never quotes an exception, names a Python
class or a server path, or carries a traceback. What only operators may see
(the exception behind a failure, a folder on the worker) is its `detail`:
the worker logs it and stores it beside the sentence (a generation's or an
evaluation's `error_detail`, a pane's `error_detail`), and every edge (the
job page, the native API, the playground's socket, /v1/) shows it to staff
only.

Plain Python: the engine raises these failures, the web process makes the
same sentences, and neither imports the other.
"""

from __future__ import annotations

from jobs.failures import ExplainedFailure

# What kind of failure a ServingFailure is; the sentence says the rest.
FAILURE_CODES = ("model_load", "out_of_memory", "bad_input", "generation")
# An exception's text, as operators are shown it, is cut to this many characters.
MAX_DETAIL_CHARACTERS = 2_000

# When the failure may be passing, and what an operator can do about it.
_AGAIN = "if it happens again, tell an operator: they can see the error"

# reason -> sentence.
MESSAGES = {
    # --- loading a model (the inference worker) --------------------------------------
    "adapter_missing": "The fine-tuned adapter could not be loaded: its files are missing.",
    "adapter_unreadable": (
        "The fine-tuned adapter could not be loaded: its files could not be read. "
        f"Train the job again; {_AGAIN}."
    ),
    "adapter_outside": (
        "{model} cannot be loaded: its files are recorded outside its job's folder."
    ),
    "model_missing": "The base model could not be loaded: its files are missing.",
    "model_unreadable": f"The base model could not be loaded on the inference worker; {_AGAIN}.",
    "model_deleted": "{model} was deleted after the request was made; ask again.",
    "model_too_large": "The base model does not fit in memory on this worker.",
    # --- what a request asks of the model ------------------------------------------------
    "messages_and_prompt": "Send either chat messages or a prompt, not both.",
    "empty_prompt": "The prompt is empty.",
    "no_messages": "The conversation has no messages.",
    "bad_role": "Message {number}: the role must be system, user or assistant.",
    "content_not_text": "Message {number}: the content must be text.",
    "no_new_tokens": "Ask for at least one new token.",
    "bad_sampling": "The temperature must be 0 or more and top-p between 0 and 1.",
    "no_chat_template": "This model has no chat template; send a plain prompt instead.",
    "chat_template_refused": (
        "This model's chat template refused the conversation; many templates need the "
        "user's and the assistant's messages to alternate."
    ),
    "prompt_too_long": (
        "The prompt is {tokens:,} tokens long; this model reads at most {limit:,} "
        "including its answer."
    ),
    "empty_text": "The text to classify is empty.",
    "not_a_generator": "This model classifies text; it cannot generate.",
    "not_a_classifier": "This model generates text; it does not classify.",
    # --- answering -----------------------------------------------------------------------
    "out_of_memory": "The model ran out of memory; try fewer panes or fewer new tokens.",
    "model_failed": f"The model failed while {{doing}}. Try again; {_AGAIN}.",
    "worker_error": f"The inference worker stopped with an unexpected error. Ask again; {_AGAIN}.",
    # --- evaluations (the job page says "The evaluation failed:" before these) -----------
    "full_fine_tune": "Full fine-tunes are compared in the playground, not evaluated here.",
    "no_validation_rows": "The validation set has no rows.",
    "row_without_label": "Row {number} of the validation set needs a text and a label.",
    "unknown_labels": ("The validation set has labels the model was not trained on: {labels}."),
    "row_without_reply": (
        "Row {number} of the validation set does not end with an assistant message."
    ),
    "no_chat_template_to_evaluate": (
        "This model has no chat template, which a chat evaluation needs."
    ),
    "row_template_refused": (
        "Row {number} of the validation set could not be written with the model's chat template."
    ),
    "evaluation_out_of_memory": "The evaluation ran out of memory on this worker.",
    "evaluation_model_failed": (
        "The model stopped with an error while it was evaluated. Request the evaluation "
        f"again; {_AGAIN} on this job's page."
    ),
    "evaluation_error": (
        "The inference worker stopped with an unexpected error. Request the evaluation "
        f"again; {_AGAIN} on this job's page."
    ),
    "evaluation_lost": (
        "The evaluation's worker {cause} on every attempt ({attempts}), so Tailor gave up. "
        "Request it again; if it fails again, ask an operator to check the evaluate "
        "worker's memory and logs."
    ),
    # --- on the way to the worker and back -------------------------------------------------
    "broker_down": (
        "The studio's message broker (Redis) is not answering, so the request could not be "
        "sent to an inference worker. Try again in a moment; if it keeps failing, tell an "
        "operator."
    ),
    "no_worker": (
        "No inference worker took the request within {seconds} s. "
        "Is the studio's infer worker running (make run starts it)?"
    ),
    "worker_lost": (
        "The inference worker was lost while answering (its process died or stopped "
        "responding). Ask again."
    ),
    "worker_silent": "The inference worker went silent for {seconds} s.",
    "no_answer": "The inference worker ended without an answer.",
    "generation_failed": "The generation failed.",
    "generation_cancelled": "The generation was cancelled before it finished.",
    # --- fine-tuning jobs as /v1/fine_tuning/jobs shows them -------------------------------
    "job_failed": "The job failed; no reason was recorded.",
}


def sentence(reason: str, **params) -> str:
    """The sentence for `reason`, made with `params` (KeyError for an unknown reason)."""
    return MESSAGES[reason].format(**params)


def detail_of(exc: BaseException) -> str:
    """An exception as operators are shown it: its class and its text, cut short."""
    text = f"{type(exc).__name__}: {exc}".strip()
    return text[:MAX_DETAIL_CHARACTERS]


class ServingFailure(ExplainedFailure):
    """A request that cannot be served: its kind (`code`), a sentence for
    everyone (`message`) and, for operators only, `detail` (see
    `jobs.failures`)."""

    codes = FAILURE_CODES


def failure(code: str, reason: str, *, detail: str = "", **params) -> ServingFailure:
    """The ServingFailure of kind `code` whose sentence is `reason`'s."""
    return ServingFailure(code, sentence(reason, **params), detail=detail)
