"""What a job's page says of where the job stands: one sentence per status.

The page renders the sentence of the status it loads with, and its script
(static/js/job_live.js) puts in the sentence of each status a live summary
brings, so no sentence outlives its status ("queued" on a running job).
A failure's reason and next step are `jobs.failures.next_step`'s.
"""

from jobs.models import JobStatus

STATUS_SENTENCES = {
    JobStatus.CREATED: "Created: it is not queued for a training worker yet.",
    JobStatus.QUEUED: "Queued: waiting for a free training worker.",
    JobStatus.RUNNING: "Training: the figures and the loss chart move with each logged step.",
    JobStatus.CANCELLING: "Cancelling: the run stops at its next step, keeping its checkpoints.",
    JobStatus.SUCCEEDED: "Finished: try the fine-tuned model in the playground, or download it.",
    JobStatus.FAILED: "Failed: the reason and what to do next are just below.",
    JobStatus.CANCELLED: "Cancelled: retry or clone it to start over.",
}


def status_sentence(status: str) -> str:
    return STATUS_SENTENCES.get(status, "")
