"""A failure told in two voices: `message`, a sentence for everyone, and
`detail`, what only operators may see (the exception behind it, a folder of
a worker). The exception's own text carries both, so the worker's log and
the traceback kept for staff have the detail, while every edge shows the
analyst only the message.

Plain Python, shared by the training engine (`TrainingFailure`) and the
inference engine (`ServingFailure`); each names the kinds (`codes`) it has.

A failed job's page says what to do next (`next_step`): one record per
failure code, with whether a retry of the same job can help.
"""

from __future__ import annotations

from dataclasses import dataclass


class ExplainedFailure(Exception):
    codes: tuple[str, ...] = ()

    def __init__(self, code: str, message: str, *, detail: str = ""):
        if code not in self.codes:
            raise ValueError(f"unknown failure code {code!r}")
        super().__init__(f"{message} [{detail}]" if detail else message)
        self.code = code
        self.message = message
        self.detail = detail


# --- what a failed job's owner can do next -----------------------------------------------


@dataclass(frozen=True)
class NextStep:
    """What one kind of failure means for the job's owner: a title, the step
    that helps, and whether running the same job again can succeed.

    `action` names the page's way out: "clone" (the wizard, prefilled from the
    job, to change its settings), "dataset" (the job's dataset, to fix its
    rows), "models" (the catalog, to pick a model the worker has), "resume"
    (the same job, from its newest checkpoint) or "retry" (a new job, as it was).
    """

    title: str
    advice: str
    action: str
    action_label: str
    # False where the same settings and data would fail the same way.
    retry_helps: bool


NEXT_STEPS = {
    # jobs/training/loop.py: torch's OutOfMemoryError or MemoryError.
    "out_of_memory": NextStep(
        "It ran out of memory",
        "The same settings would run out again. Clone the job with a smaller batch "
        "size or a shorter maximum length, or choose QLoRA or a smaller preset or model.",
        "clone", "Clone with a smaller batch", retry_helps=False,
    ),
    # jobs/training/data.py and the objectives: rows the run cannot train on.
    "dataset": NextStep(
        "Its data cannot be trained on",
        "A retry would read the same rows. Fix the dataset (its page shows each "
        "problem by row) or choose another, then clone the job onto it.",
        "dataset", "Open the dataset", retry_helps=False,
    ),
    # jobs/training/loading.py: not on the worker, and not to be fetched.
    "model_load": NextStep(
        "Its base model could not be loaded",
        "The worker has no copy of this model and cannot fetch one. Choose a model "
        "the Models page shows as ready, then clone the job onto it.",
        "models", "Choose a ready model", retry_helps=False,
    ),
    # jobs/worker.py: nothing partial was kept.
    "disk_full": NextStep(
        "The disk is full",
        "Free some space (delete old jobs and datasets), then resume the job: it "
        "continues from its newest complete checkpoint.",
        "resume", "Resume", retry_helps=True,
    ),
    # jobs/services/ledger.py: the machine, not the job.
    "worker_lost": NextStep(
        "Its training worker was lost",
        "Nothing in the job caused this: resume it to continue from its newest "
        "checkpoint. If it is lost again, tell an operator.",
        "resume", "Resume", retry_helps=True,
    ),
    # jobs/worker.py: the object store (TAILOR_STORAGE=s3) failed, not the job.
    "storage": NextStep(
        "Its files could not be stored",
        "The object store that holds the studio's files could not be reached or refused "
        "a file. Resume the job once it is back: it continues from its newest stored "
        "checkpoint. If it fails again, tell an operator.",
        "resume", "Resume", retry_helps=True,
    ),
    "stalled": NextStep(
        "It stopped making progress",
        "A step that hangs is usually a stuck device or data loader, not the job: "
        "resume it. If it stalls again, tell an operator.",
        "resume", "Resume", retry_helps=True,
    ),
}  # fmt: skip

# An error nobody foresaw ("training", or a code this table does not know):
# it may be passing, so a retry is worth one try.
UNFORESEEN = NextStep(
    "It stopped with an unexpected error",
    "Retry the job once; if it fails again, tell an operator: they can see the "
    "error on this page.",
    "retry", "Retry", retry_helps=True,
)  # fmt: skip


def next_step(code: str) -> NextStep:
    """What helps after a failure with `code` (a job's `error_code`)."""
    return NEXT_STEPS.get(code, UNFORESEEN)
