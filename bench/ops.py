"""Benchmark: rendering the operations page (/ops/) for a busy studio.

    .venv/bin/python bench/ops.py [--jobs 10000] [--workers 50] [--rounds 20]

In a fresh SQLite database and its own embedded Redis: first /ops/ of an
empty studio (the baseline, measured in the same run), then of a studio with
`--jobs` jobs (a fifth queued and held in the fair-share line, one running per
worker of the train queue, the rest finished, a tenth of those failed) over
20 users, and `--workers` workers' heartbeats (a tenth stopped reporting; the
inference ones with models loaded). Each figure is the median of `--rounds`
full-page renders by Django's test client as a staff user (middleware,
session, every query, the template), after one warm-up; then each section's
partial as htmx polls it, and the number of queries per render, which must
not grow with the studio.

Target: the full page under 200 ms (the wall clock; the CPU time when the
machine is shared, its load above its cores), in at most 30 queries. Exits 1
when it misses.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 200.0
# The page's queries do not depend on the number of jobs or workers.
MAX_QUERIES = 30
USERS = 20


def setup(scratch: Path):
    """Django against a fresh database and Redis in `scratch`."""
    from studio.redis_server import EmbeddedRedis, free_port

    redis = EmbeddedRedis(scratch / "redis", free_port(), durable=False)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="studio.settings",
        VAR_DIR=str(scratch / "var"),
        MEDIA_ROOT=str(scratch / "media"),
        DATABASE_URL=f"sqlite:///{scratch / 'ops.sqlite3'}",
        REDIS_URL=redis.start(),
        DEBUG="false",
        SECRET_KEY="ops-bench-" + "x" * 50,
        ALLOWED_HOSTS="testserver",
        TAILOR_FAST_PASSWORD_HASHER="1",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("make_demo_models", verbosity=0)
    return redis


def timed(client, url: str, rounds: int) -> tuple[float, float, int]:
    """Median wall and CPU milliseconds of `rounds` GETs, and the queries of one.
    CPU time is this process's alone (the render, SQLite's work): other work
    sharing the cores does not inflate it, as it does the wall clock."""
    from django.db import connection

    response = client.get(url)  # warm-up
    assert response.status_code == 200, (url, response.status_code)
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        client.get(url)
    wall, cpu = [], []
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.process_time()
        client.get(url)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu), len(queries)


def seed(jobs_total: int, workers_total: int) -> None:  # noqa: PLR0915  (one scene, in order)
    import datetime
    import uuid

    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from datasets_app.services import create_from_sample, run_validation
    from jobs.models import FineTuneJob
    from jobs.services.lifecycle import check_start_job, create_job
    from ops import workers

    users = get_user_model().objects
    templates = []
    for number in range(USERS):
        user = users.create_user(f"analyst{number}", password="ops-bench-password-1")
        dataset = create_from_sample(user, "support-routing")
        run_validation(str(dataset.pk), dataset.revision)
        document = {"data": {"dataset": str(dataset.pk)}, "model": {"base_model": "tailor-tiny"}}
        templates.append(create_job(user, check_start_job(user, document), start=False))
    fields = [
        f.name
        for f in FineTuneJob._meta.concrete_fields
        if f.name not in ("id", "fine_tuned_model")
    ]
    train_workers = [f"train-{n}@gpu{n}" for n in range(workers_total // 2)]
    start = timezone.now() - datetime.timedelta(days=30)
    batch = []
    for made in range(USERS, jobs_total):
        template = templates[made % USERS]
        copy = FineTuneJob(**{name: getattr(template, name) for name in fields})
        copy.id = uuid.uuid4()
        copy.fine_tuned_model = f"{template.fine_tuned_model}-{made}"
        copy.created_at = start + datetime.timedelta(seconds=made * 60)
        if made % 5 == 0:
            copy.status, copy.queued_at = "queued", copy.created_at
        elif made - USERS < len(train_workers):
            copy.status, copy.worker = "running", train_workers[made - USERS]
            copy.current_step, copy.total_steps, copy.tokens_per_second = 120, 400, 2350.0
            copy.eta_seconds, copy.attempt = 900.0, 1
        elif made % 10 == 1:
            copy.status, copy.error_message = "failed", "Training ran out of memory at step 3."
            copy.finished_at = copy.created_at
        else:
            copy.status, copy.finished_at = "succeeded", copy.created_at
        batch.append(copy)
        if len(batch) == 5000:
            with transaction.atomic():
                FineTuneJob.objects.bulk_create(batch)
            batch = []
    if batch:
        with transaction.atomic():
            FineTuneJob.objects.bulk_create(batch)

    gib = 2**30
    names = [*train_workers]
    names += [f"infer-{n}@gpu{n}" for n in range(workers_total - len(names))]
    for index, name in enumerate(names):
        serving = name.startswith("infer")
        workers.write({
            "name": name, "pid": 1000 + index, "queues": ["infer"] if serving else ["train"],
            "concurrency": 1, "started_at": "2026-01-01T00:00:00+00:00",
            "uptime_seconds": 86_400.0, "host": name.split("@")[1], "torch": "2.13.0",
            "cuda": "12.8", "memory_total": 256 * gib, "memory_used": 12 * gib,
            "gpus": [{"name": "NVIDIA H200", "memory_used": 70 * gib, "memory_total": 141 * gib}],
            "loaded": [{"source": "Qwen/Qwen2.5-7B-Instruct", "task": "causal-lm",
                        "quantized": False, "bytes": 15 * gib,
                        "adapters": [f"ft_{n:032x}" for n in range(8)], "last_used": 0}]
            if serving else None,
            "at": "2026-01-01T01:00:00+00:00",
        })  # fmt: skip
        if index % 10 == 9:  # stopped reporting
            workers.client().delete(workers.alive_key(name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="tailor-ops-bench-"))
    redis = setup(scratch)
    try:
        from django.contrib.auth import get_user_model
        from django.test import Client

        from jobs.models import FineTuneJob
        from ops import snapshot, storage, workers

        operator = get_user_model().objects.create_user("olga", password="x", is_staff=True)
        client = Client()
        client.force_login(operator)
        empty = timed(client, "/ops/", args.rounds)

        began = time.monotonic()
        seed(args.jobs, args.workers)
        storage.measure_and_store()
        print(
            f"seeded {FineTuneJob.objects.count():,} jobs and {len(workers.read_all())} "
            f"workers' heartbeats in {time.monotonic() - began:.0f} s"
        )
        busy = timed(client, "/ops/", args.rounds)
        print(f"\n{'render':<28}{'wall ms':>9}{'CPU ms':>9}{'queries':>9}")
        rows = [("/ops/, empty studio", empty), ("/ops/, busy studio", busy)]
        rows += [
            (f"  section {name}", timed(client, f"/ops/?section={name}", args.rounds))
            for name in snapshot.SECTIONS
        ]
        rows.append(("/metrics, busy studio", timed(client, "/metrics", args.rounds)))
        for label, (wall, cpu, queries) in rows:
            print(f"{label:<28}{wall:>9.1f}{cpu:>9.1f}{queries:>9}")
        load = os.getloadavg()[0]
        print(f"\nload average {load:.1f} on {os.cpu_count()} cores")
        print(
            f"busy / empty: {busy[0] / empty[0]:.2f}x wall, {busy[1] / empty[1]:.2f}x CPU; "
            f"queries {busy[2]} (bounded: at most {MAX_QUERIES} whatever the size)"
        )
        # The wall clock is the target on a quiet machine; on a shared one
        # (load above the cores) the CPU time is the steadier figure.
        figure = busy[0] if load < (os.cpu_count() or 1) else busy[1]
        missed = figure > TARGET_MS or busy[2] > MAX_QUERIES
        print(f"target: busy page under {TARGET_MS:.0f} ms: {figure:.1f} ms, "
              f"{'MISSED' if missed else 'met'}")  # fmt: skip
        sys.exit(1 if missed else 0)
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
