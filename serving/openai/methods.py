"""OpenAI's fine-tuning methods in Tailor's terms: `method` as a create
request sends it ({"type": "dpo", "dpo": {"hyperparameters": {...}}}), the
data each method trains on, and the method a job object shows.

OpenAI offers supervised fine-tuning and DPO (and reinforcement, which
Tailor does not). A method's type must match the training file's data,
which validation found (the dataset's task): supervised trains on
generation or classification data, DPO on preference pairs. The objective a
job trains with is the job configuration's (jobs/services/lineage.py), from
the dataset's task; a DPO request names it in the document too, so that the
configuration's own check refuses a mismatch as well.
"""

from __future__ import annotations

from jobs.vocabulary import (
    CLASSIFICATION,
    FEEDBACK,
    GENERATION,
    OBJECTIVE_FOR_DATASET_TASK,
    PREFERENCE,
    ObjectiveName,
)
from serving.openai.http import RequestError

SUPERVISED = "supervised"
DPO = "dpo"
# A method's hyperparameters, as OpenAI names them.
HYPERPARAMETERS = {
    SUPERVISED: ("n_epochs", "batch_size", "learning_rate_multiplier"),
    DPO: ("beta", "n_epochs", "batch_size", "learning_rate_multiplier"),
}
NOT_OFFERED = {"reinforcement"}
# The data (dataset tasks) each method trains on.
METHOD_TASKS = {SUPERVISED: (GENERATION, CLASSIFICATION), DPO: (PREFERENCE,)}
# How a job's objective is shown; objectives OpenAI has no word for (KTO,
# merges) show no method.
OBJECTIVE_METHODS = {
    ObjectiveName.SUPERVISED: SUPERVISED,
    ObjectiveName.CLASSIFICATION: SUPERVISED,
    ObjectiveName.DPO: DPO,
}
# What a dataset's task holds, in the words of a sentence about a file.
TASK_WORDS = {
    GENERATION: "generation data (prompts and answers)",
    CLASSIFICATION: "classification data (texts and labels)",
    PREFERENCE: "preference data (a prompt, a chosen and a rejected answer)",
    FEEDBACK: "feedback data (single answers marked good or bad)",
}


def _bad(param: str, message: str) -> RequestError:
    return RequestError(400, f"{param}: {message}", param=param)


def read_method(method) -> tuple[str, object]:
    """(type, hyperparameters as sent or None) of a request's `method`;
    ("supervised", None) when there is none, OpenAI's default."""
    if method is None:
        return SUPERVISED, None
    if not isinstance(method, dict):
        raise _bad("method", 'must be an object such as {"type": "supervised"}.')
    kind = method.get("type")
    if kind in NOT_OFFERED:
        raise _bad(
            "method.type", f"'{kind}' fine-tuning is not offered here: send 'supervised' or 'dpo'."
        )
    if kind not in HYPERPARAMETERS:
        raise _bad("method.type", "must be 'supervised' or 'dpo'.")
    for other in (*HYPERPARAMETERS, *NOT_OFFERED):
        if other != kind and method.get(other) is not None:
            raise _bad(f"method.{other}", f"does not go with method type '{kind}'.")
    unknown = sorted(set(method) - {"type", *HYPERPARAMETERS, *NOT_OFFERED})
    if unknown:
        raise _bad(f"method.{unknown[0]}", "is not a field of method.")
    settings = method.get(kind)
    if settings is None:
        return kind, None
    if not isinstance(settings, dict):
        raise _bad(f"method.{kind}", 'must be an object such as {"hyperparameters": {}}.')
    return kind, settings.get("hyperparameters")


def check_training_data(kind: str, given: bool, dataset, public_id: str) -> None:
    """RequestError unless the method `kind` trains on `dataset`'s data.
    `given`: the request named the method (else it is OpenAI's default)."""
    if dataset.task in METHOD_TASKS[kind]:
        return
    holds = f"file '{public_id}' ({dataset.original_filename}) holds " + TASK_WORDS.get(
        dataset.task, f"{dataset.task} data"
    )
    if dataset.task == FEEDBACK:
        raise _bad(
            "training_file",
            f"{holds}, which trains with KTO; OpenAI's API has no such method. "
            "Create the job in the studio or through its API (/api/v1/jobs/).",
        )
    if dataset.task == PREFERENCE:
        param = "method.type" if given else "method"
        raise _bad(
            param,
            f"{holds}, which trains with DPO: send "
            '"method": {"type": "dpo"} (its hyperparameters in method.dpo.hyperparameters).',
        )
    raise _bad(
        "method.type",
        f"'{kind}' trains on {TASK_WORDS[PREFERENCE]}, and {holds}. Upload a preference "
        "file (OpenAI's format: input.messages, preferred_output, non_preferred_output), "
        "or send method type 'supervised'.",
    )


def document_sections(kind: str, chosen: dict) -> dict:
    """The job document's objective and preference sections for a method."""
    if kind != DPO:
        return {}
    sections = {"objective": OBJECTIVE_FOR_DATASET_TASK[PREFERENCE]}
    if "beta" in chosen:
        sections["preference"] = {"beta": chosen["beta"]}
    return sections


def shown_method(job, hyperparameters: dict) -> dict | None:
    """The job's method as OpenAI shows it: its type and resolved hyperparameters."""
    kind = OBJECTIVE_METHODS.get(job.objective)
    if kind is None:
        return None
    if kind == DPO:
        preference = job.config.get("preference") or {}
        hyperparameters = {**hyperparameters, "beta": preference.get("beta")}
    return {"type": kind, kind: {"hyperparameters": hyperparameters}}
