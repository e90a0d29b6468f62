"""What the fault tests read back from a job's record after a fault: its
row now, its events, and the invariant every recovery keeps (one live run
of a job at a time). Specific to tests/faults/; builders and processes are
tests/builders.py and tests/processes.py."""

from jobs.models import FineTuneJob, JobEvent


def current(job) -> FineTuneJob:
    return FineTuneJob.objects.get(pk=job.pk)


def events(job, prefix: str) -> list[JobEvent]:
    return [e for e in JobEvent.objects.filter(job=job) if e.message.startswith(prefix)]


def one_live_run_at_a_time(job) -> None:
    """Every claim of the job came after the previous attempt was over: the
    "Running on …" events carry strictly increasing attempts, one each."""
    claims = list(
        JobEvent.objects.filter(job=job, kind="status", to_status="running")
        .order_by("id")
        .values_list("attempt", flat=True)
    )
    assert claims == list(range(1, len(claims) + 1))
