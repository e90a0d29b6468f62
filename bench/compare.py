"""Benchmark: the Compare page with six long runs, drawn and followed live.

    .venv/bin/python bench/compare.py [--points 5000] [--rounds 5]

One private studio (its own Redis and SQLite database, as train_overhead.py's)
holds six running jobs of tailor-tiny, each with `--points` logged training
steps and one validation point every 100 steps. Three measurements:

1. **Server time** of GET /jobs/compare/?ids=<the six> (Django's test client,
   in process, median of `--rounds` after one warm-up), against the same page
   when each job holds only its first 50 points (the baseline, same run).
2. **First paint** in Chromium (headless, the studio served by uvicorn as
   `make run` serves it): from the navigation's start to the chart drawn with
   every run's curve (compare.js stamps `data-drawn`), median of `--rounds`
   loads. Target: under 1 s.
3. **Live updates**: six job sockets open at once (the Compare page follows
   each active run over its own), the training callbacks' metric writes
   (`ledger.record_metric`) round-robin over the six jobs, the time from each
   write to its point arriving on its job's socket, p50/p95 over 300 points;
   the baseline is one socket and one job in the same run. Target: p95 <= 50
   ms, the live-loss target of train_overhead.py.

Exits 1 when a target is missed. On a 2-core machine the browser, the server
and this script share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.train_overhead import (  # noqa: E402
    make_owner,
    percentile,
    ready_dataset,
    session_key,
    set_up_studio,
)

RUNS = 6
TARGET_PAINT_S = 1.0
TARGET_P95_MS = 50
CHROMIUM = "/usr/bin/chromium"


def running_jobs(owner, points: int) -> list:
    """Six claimed jobs, each with `points` training points and a validation point every 100."""
    from jobs.models import FineTuneJob, MetricKind, MetricPoint
    from jobs.services import ledger
    from jobs.services.lifecycle import check_start_job, create_job

    dataset = ready_dataset(owner)
    jobs = []
    for number in range(RUNS):
        document = {
            "name": f"Run {number + 1}",
            "data": {"dataset": str(dataset.pk)},
            "model": {"base_model": "tailor-tiny", "method": "lora"},
            "training": {"learning_rate": 0.0002 * (number + 1), "max_steps": points * 2},
        }
        job = create_job(owner, check_start_job(owner, document), start=False)
        FineTuneJob.objects.filter(pk=job.pk).update(status="queued")
        attempt = ledger.claim(job.pk, "bench").attempt
        ledger.record_start(job.pk, attempt, total_steps=points * 2, resumed_from_step=0)
        rows = [
            MetricPoint(job_id=job.pk, attempt=attempt, step=step, kind=MetricKind.TRAIN,
                        train_loss=2.0 / (1 + step / 500) + number * 0.01, tokens=step * 512,
                        elapsed=step * 0.8)
            for step in range(1, points + 1)
        ] + [
            MetricPoint(job_id=job.pk, attempt=attempt, step=step, kind=MetricKind.EVAL,
                        val_loss=2.1 / (1 + step / 500), tokens=step * 512, elapsed=step * 0.8)
            for step in range(100, points + 1, 100)
        ]  # fmt: skip
        MetricPoint.objects.bulk_create(rows, batch_size=2000)
        jobs.append((job, attempt))
    return jobs


def server_time(owner, ids: str, rounds: int) -> float:
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(owner)
    client.get("/jobs/compare/", {"ids": ids})  # warm-up
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get("/jobs/compare/", {"ids": ids})
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return statistics.median(times)


def serve() -> tuple[subprocess.Popen, str]:
    from studio.redis_server import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "studio.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--timeout-graceful-shutdown", "2"],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            connection.getresponse()
            return server, url
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("the studio did not answer within 60 s")


def first_paint(owner, ids: str, rounds: int) -> list[float]:
    """Seconds from each navigation's start to the chart drawn with every point."""
    from django.conf import settings
    from playwright.sync_api import sync_playwright

    cookie = session_key(owner)  # before Playwright's event loop: Django refuses inside one
    server, url = serve()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                                  "value": cookie, "url": url}])  # fmt: skip
            page = context.new_page()
            page.goto(f"{url}/jobs/compare/?ids={ids}")  # warm-up: files cached as a user's are
            times = []
            for _ in range(rounds):
                page.goto(f"{url}/jobs/compare/?ids={ids}")
                page.wait_for_selector("#compare-chart[data-drawn]", timeout=30_000)
                drawn = page.evaluate(
                    "Number(document.getElementById('compare-chart').dataset.drawn)"
                    " - performance.timeOrigin"
                )
                times.append(drawn / 1000)
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    return times


def live_latency(owner, jobs: list, points_each: int) -> list[float]:
    """Metric writes round-robin over `jobs`, each timed to its arrival on its job's socket."""
    from channels.testing import WebsocketCommunicator
    from django.conf import settings

    from jobs.services import ledger
    from studio.asgi import application

    headers = [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_key(owner)}".encode()),
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
    ]

    async def scenario() -> list[float]:
        sockets = []
        for job, _ in jobs:
            client = WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/", headers=headers)
            connected, _ = await client.connect(timeout=10)
            assert connected, "the job socket refused the owner"
            # As compare.js asks: the points after the last one drawn.
            await client.send_json_to({"after_step": 10**6, "attempt": 1})
            await client.receive_json_from(timeout=30)
            sockets.append(client)
        latencies = []
        base = 10**6
        for round_number in range(1, points_each + 1):
            for (job, attempt), client in zip(jobs, sockets, strict=True):
                step = base + round_number
                event = {
                    "kind": "metric", "step": step, "epoch": 0.0, "train_loss": 1.0,
                    "val_loss": None, "learning_rate": 1e-3, "grad_norm": 1.0,
                    "tokens_per_second": 1000.0, "tokens": step, "elapsed": 0.0, "eta": 1.0,
                    "total_steps": base * 2,
                }  # fmt: skip
                started = time.perf_counter()
                await asyncio.to_thread(ledger.record_metric, job.pk, attempt, event)
                while True:
                    message = await client.receive_json_from(timeout=10)
                    if message.get("type") == "point" and message["point"]["step"] == step:
                        break
                latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.02)
        for client in sockets:
            await client.disconnect()
        return latencies

    return asyncio.run(scenario())


def row(*cells: str) -> None:
    print(f"{cells[0]:<42}{cells[1]:>18}{cells[2]:>22}{cells[3]:>8}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tailor-bench-") as scratch:
        redis = set_up_studio(Path(scratch))
        try:
            from jobs.models import FineTuneJob, MetricPoint

            owner = make_owner()
            print(f"Seeding {RUNS} running jobs x {args.points:,} points ...")
            jobs = running_jobs(owner, args.points)
            ids = ",".join(str(job.pk) for job, _ in jobs)
            full = server_time(owner, ids, args.rounds)
            paint = first_paint(owner, ids, args.rounds)
            # The baseline: the same six jobs holding their first 50 steps.
            with_all = {job.pk: job for job, _ in jobs}
            MetricPoint.objects.filter(job_id__in=with_all, step__gt=50).delete()
            small = server_time(owner, ids, args.rounds)
            small_paint = first_paint(owner, ids, args.rounds)
            single = live_latency(owner, jobs[:1], 100)
            six = live_latency(owner, jobs, 50)
            assert FineTuneJob.objects.filter(pk__in=with_all, status="running").count() == RUNS
        finally:
            redis.stop()
    paint_median, small_median = statistics.median(paint), statistics.median(small_paint)
    print()
    row("measure", f"6 x {args.points:,} points", "6 x 50 (baseline)", "ratio")
    row(
        "server time, median (ms)",
        f"{full * 1000:.1f}",
        f"{small * 1000:.1f}",
        f"{full / small:.2f}",
    )
    row("navigation to chart drawn, median (ms)", f"{paint_median * 1000:.1f}",
        f"{small_median * 1000:.1f}", f"{paint_median / small_median:.2f}")  # fmt: skip
    print(f"  (rounds: {', '.join(f'{t * 1000:.0f}' for t in paint)} ms)")
    print()
    row("live, write -> its socket (ms)", "6 sockets", "1 socket (baseline)", "ratio")
    for name, share in (("p50", 0.5), ("p95", 0.95)):
        mine, alone = percentile(six, share), percentile(single, share)
        row(name, f"{mine:.1f}", f"{alone:.1f}", f"{mine / alone:.2f}")
    p95 = percentile(six, 0.95)
    met = paint_median < TARGET_PAINT_S and p95 <= TARGET_P95_MS
    print()
    print(f"Targets: chart drawn < {TARGET_PAINT_S:.0f} s, live p95 <= {TARGET_P95_MS} ms: "
          f"{'met' if met else 'MISSED'}")  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
