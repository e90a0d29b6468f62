"""What /ops/, GET /api/v1/ops/ and /metrics show: the fleet, read in bounded queries.

Each section is one function returning plain JSON-ready data, so that the
page can refresh one section at a time and the API returns them all. The
cost does not grow with the number of jobs: counts are aggregates, lists
are capped at LIST_LIMIT with the number left out, and what each worker
runs comes from one query per kind of leased work (the ledger's `worker`
column), never one per row. Workers come from their heartbeats in Redis
(ops/workers.py), the storage from the last survey (ops/storage.py).
"""

from __future__ import annotations

from datetime import datetime

import redis
from django.conf import settings
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from jobs.models import FineTuneJob, JobStatus
from ops import storage, workers
from quotas.services import fair_share
from studio.services import capacity, leases

LIST_LIMIT = 50
RECENT_FAILURES = 10
# What a waiting row of a kind has waited since (a training job: since it was
# queued; other kinds: since their message was sent).
WAITING_SINCE = {"training": "queued_at"}
SECTIONS = ("queues", "workers", "training", "serving", "maintenance", "storage")


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def queue_names() -> tuple[str, ...]:
    """The studio's queues, then the larger memory classes' (capacity.py)."""
    return tuple(dict.fromkeys((*settings.TAILOR_QUEUES, *capacity.training_queues())))


def _broker_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue (one LLEN each, one round trip)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
    try:
        pipe = client.pipeline(transaction=False)
        names = queue_names()
        for name in names:
            pipe.llen(name)
        return dict(zip(names, pipe.execute(), strict=True))
    finally:
        client.close()


def waiting_by_kind() -> dict[str, dict]:
    """Each kind's waiting rows: how many, and since when the oldest (one query a kind)."""
    found = {}
    for kind in leases.KINDS.values():
        since = WAITING_SINCE.get(kind.name, kind.columns.dispatched)
        row = (
            kind.rows()
            .filter(**{kind.columns.status: kind.waiting})
            .aggregate(count=Count("pk"), oldest=Min(since))
        )
        found[kind.name] = {"queue": kind.queue, **row}
    return found


def queued_jobs(limit: int = LIST_LIMIT) -> dict:
    """The training jobs waiting for a worker: those already sent to the
    broker first (a worker takes them next), then the line the fair-share
    dispatcher keeps in the database, in its order, each with why it waits.
    One query for the rows shown, besides the line's own."""
    now = timezone.now()
    line = fair_share.waiting_line(limit)
    shown = (
        FineTuneJob.objects.filter(status=JobStatus.QUEUED)
        .filter(Q(dispatched_at__isnull=False) | Q(pk__in=[place.job_id for place in line]))
        .select_related("owner")
        .only("id", "name", "queued_at", "created_at", "dispatched_at", "owner__username")
        .order_by(F("dispatched_at").asc(nulls_last=True))[: 2 * limit]
    )
    sent, by_id = [], {}
    for job in shown:
        if job.dispatched_at is not None:
            sent.append(job)
        else:
            by_id[str(job.pk)] = job

    def row(job, position, why) -> dict:
        return {"id": str(job.pk), "name": job.name, "owner": job.owner.username,
                "position": position, "why": why,
                "waiting_seconds": _age(job.queued_at or job.created_at, now)}  # fmt: skip

    jobs = [row(job, None, "sent to a training worker") for job in sent[:limit]]
    for place in line[: max(0, limit - len(jobs))]:
        job = by_id.get(place.job_id)
        if job is not None:  # else released or cancelled between the two reads
            jobs.append(row(job, place.position, place.reason(job.owner.username)))
    return {"jobs": jobs}


def queues() -> dict:
    now = timezone.now()
    waiting = waiting_by_kind()
    try:
        depths, error = _broker_depths(), ""
    except redis.RedisError as exc:
        depths, error = {}, f"{type(exc).__name__}: {exc}"
    rows = []
    for name in queue_names():
        kinds = {k: w for k, w in waiting.items() if w["queue"] == name}
        oldest = min((w["oldest"] for w in kinds.values() if w["oldest"]), default=None)
        rows.append({
            "name": name,
            "depth": depths.get(name),
            "waiting": {kind: w["count"] for kind, w in kinds.items()},
            "oldest_waiting_seconds": _age(oldest, now),
        })  # fmt: skip
    total = waiting["training"]["count"] if "training" in waiting else 0
    jobs = queued_jobs()
    return {
        "queues": rows, "error": error, "queued_jobs": jobs["jobs"], "queued_jobs_total": total,
        "queued_jobs_more": max(0, total - len(jobs["jobs"])),
    }  # fmt: skip


def current_work() -> dict[str, list[dict]]:
    """What each worker runs now, by worker name, from the ledger (one query a kind)."""
    by_worker: dict[str, list[dict]] = {}
    for kind in leases.KINDS.values():
        c = kind.columns
        rows = (
            kind.model.objects.filter(**{f"{c.status}__in": kind.running})
            .exclude(**{c.worker: ""})
            .values_list("pk", c.worker)[:500]
        )
        for pk, worker in rows:
            by_worker.setdefault(worker, []).append({"kind": kind.name, "id": str(pk)})
    return by_worker


def fleet() -> dict:
    """Every worker that reported lately (or stopped reporting, red), with what it runs."""
    try:
        found, error = workers.read_all(), ""
    except redis.RedisError as exc:
        found, error = [], f"{type(exc).__name__}: {exc}"
    running = current_work() if found else {}
    for worker in found:
        worker["running"] = running.get(worker["name"], [])
        # Records from before capabilities were reported lack these.
        worker.setdefault("memory_classes", capacity.worker_classes(worker))
        worker.setdefault("cached_models", [])
    return {"workers": found, "error": error, "interval_seconds": workers.interval()}


def training() -> dict:
    base = FineTuneJob.objects.select_related("owner").only(
        "id", "name", "status", "current_step", "total_steps", "tokens_per_second",
        "eta_seconds", "worker", "error_message", "error_code", "finished_at",
        "owner__username",
    )  # fmt: skip
    active = (JobStatus.RUNNING, JobStatus.CANCELLING)
    running_total = FineTuneJob.objects.filter(status__in=active).count()
    running = [
        {"id": str(job.pk), "name": job.name, "owner": job.owner.username, "status": job.status,
         "step": job.current_step, "total_steps": job.total_steps,
         "progress_percent": job.progress_percent, "tokens_per_second": job.tokens_per_second,
         "eta_seconds": job.eta_seconds, "worker": job.worker}
        for job in base.filter(status__in=active).order_by("started_at")[:LIST_LIMIT]
    ]  # fmt: skip
    failures = [
        {"id": str(job.pk), "name": job.name, "owner": job.owner.username,
         "reason": job.error_message or job.error_code, "finished_at": job.finished_at}
        for job in base.filter(status=JobStatus.FAILED).order_by("-finished_at")[:RECENT_FAILURES]
    ]  # fmt: skip
    return {
        "running": running, "running_total": running_total,
        "running_more": max(0, running_total - len(running)), "recent_failures": failures,
    }  # fmt: skip


def serving(fleet_data: dict | None = None) -> dict:
    """Per serving worker (infer and evaluate queues): what it holds loaded."""
    fleet_data = fleet_data or fleet()
    servers = []
    for worker in fleet_data["workers"]:
        if not {"infer", "evaluate"} & set(worker.get("queues", ())):
            continue
        loaded = worker.get("loaded") or []
        servers.append({
            "name": worker["name"], "reporting": worker["reporting"], "models": loaded,
            "memory_held": sum(model.get("bytes", 0) for model in loaded),
        })  # fmt: skip
    waiting = leases.KINDS["generation"].rows().filter(status="queued").count()
    return {"servers": servers, "generations_waiting": waiting, "error": fleet_data["error"]}


def maintenance() -> dict:
    """The reaper (beat sends it to the maintenance queue) and the storage survey."""
    try:
        age, error = leases.reaper_last_run_age(), ""
    except redis.RedisError as exc:
        age, error = None, f"{type(exc).__name__}: {exc}"
    survey = storage.last_survey()
    survey_age = None
    if survey:
        survey_age = _age(datetime.fromisoformat(survey["measured_at"]), timezone.now())
    survey_stale_after = 3 * settings.TAILOR_STORAGE_SURVEY_SECONDS
    return {
        "reaper": {"last_run_seconds_ago": age, "stale": age is None,
                   "stale_after_seconds": leases.reaper_stale_after(), "error": error},
        "storage_survey": {"last_run_seconds_ago": survey_age,
                           "stale": survey_age is None or survey_age > survey_stale_after,
                           "stale_after_seconds": survey_stale_after},
    }  # fmt: skip


def storage_section() -> dict:
    return {"survey": storage.last_survey(), "disk": storage.disk()}


def jobs_by_state() -> dict[str, int]:
    counts = dict.fromkeys(JobStatus.values, 0)
    for row in FineTuneJob.objects.values("status").annotate(n=Count("pk")).order_by():
        counts[row["status"]] = row["n"]
    return counts


def section(name: str) -> dict:
    """One section of the page, by name (SECTIONS)."""
    return {
        "queues": queues, "workers": fleet, "training": training, "serving": serving,
        "maintenance": maintenance, "storage": storage_section,
    }[name]()  # fmt: skip


def page() -> dict:
    """Every section the page shows (its first render)."""
    fleet_data = fleet()
    return {
        "queues": queues(),
        "workers": fleet_data,
        "training": training(),
        "serving": serving(fleet_data),
        "maintenance": maintenance(),
        "storage": storage_section(),
    }


def everything() -> dict:
    """The page's sections and the jobs by state (the API and /metrics)."""
    return {**page(), "jobs_by_state": jobs_by_state()}
