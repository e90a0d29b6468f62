"""Prometheus metrics at /metrics (prometheus-client), for the operators' Grafana.

Two sources:

- `StudioCollector` reads the fleet when Prometheus scrapes (queue depths,
  waiting work, workers up by queue, GPU and host memory per worker, jobs by
  state, the reaper, storage): the same bounded reads as /ops/, so every
  web process answers alike.
- `RequestLatencyMiddleware` times every request into one histogram,
  labelled by URL pattern (never the raw path: ids would make a series per
  object), method and status class. A histogram lives in its process: with
  several web processes, set PROMETHEUS_MULTIPROC_DIR to one empty folder
  for all of them (prometheus-client's multiprocess mode) and /metrics sums
  them; without it, each scrape sees the process that answered.

Who may read it: a staff session, a staff API token, or a scraper sending
`Authorization: Bearer $TAILOR_METRICS_TOKEN` (README, "Operations").
"""

from __future__ import annotations

import os
import time

from django.conf import settings
from django.http import HttpResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from ops import snapshot

LATENCY = Histogram(
    "tailor_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern, method and status class.",
    ("route", "method", "status"),
    # Pages answer in tens of milliseconds; uploads and exports take seconds.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class RequestLatencyMiddleware:
    """Times each request (first in MIDDLEWARE: the whole stack is inside)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match else "unmatched"
        LATENCY.labels(route, request.method, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        return response


class StudioCollector:
    """The fleet, read at scrape time."""

    def collect(self):
        data = snapshot.everything()
        queues = data["queues"]
        depth = GaugeMetricFamily(
            "tailor_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "tailor_queue_oldest_waiting_seconds",
            "Age of the oldest work waiting for a worker of a queue.", labels=["queue"],
        )  # fmt: skip
        waiting = GaugeMetricFamily(
            "tailor_work_waiting", "Rows waiting for a worker, by kind of work.",
            labels=["queue", "kind"],
        )  # fmt: skip
        for queue in queues["queues"]:
            if queue["depth"] is not None:
                depth.add_metric([queue["name"]], queue["depth"])
            oldest.add_metric([queue["name"]], queue["oldest_waiting_seconds"] or 0)
            for kind, count in queue["waiting"].items():
                waiting.add_metric([queue["name"], kind], count)
        yield from (depth, oldest, waiting)

        up = GaugeMetricFamily(
            "tailor_worker_up", "1 while a worker reports its heartbeat, 0 once it stopped.",
            labels=["worker", "host"],
        )  # fmt: skip
        by_queue = GaugeMetricFamily(
            "tailor_workers", "Workers reporting, by queue they consume.", labels=["queue"]
        )
        memory = GaugeMetricFamily(
            "tailor_worker_memory_bytes", "Resident memory of a worker and its pool.",
            labels=["worker"],
        )  # fmt: skip
        gpu_used = GaugeMetricFamily(
            "tailor_worker_gpu_memory_used_bytes", "GPU memory in use on a worker's GPU.",
            labels=["worker", "gpu", "name"],
        )  # fmt: skip
        gpu_total = GaugeMetricFamily(
            "tailor_worker_gpu_memory_total_bytes", "GPU memory of a worker's GPU.",
            labels=["worker", "gpu", "name"],
        )  # fmt: skip
        counts = dict.fromkeys(settings.TAILOR_QUEUES, 0)
        for worker in data["workers"]["workers"]:
            name = worker["name"]
            up.add_metric([name, worker.get("host", "")], 1 if worker["reporting"] else 0)
            if not worker["reporting"]:
                continue
            for queue in worker.get("queues", ()):
                counts[queue] = counts.get(queue, 0) + 1
            memory.add_metric([name], worker.get("memory_used", 0))
            for index, gpu in enumerate(worker.get("gpus", ())):
                gpu_used.add_metric([name, str(index), gpu["name"]], gpu["memory_used"])
                gpu_total.add_metric([name, str(index), gpu["name"]], gpu["memory_total"])
        for queue, count in counts.items():
            by_queue.add_metric([queue], count)
        yield from (up, by_queue, memory, gpu_used, gpu_total)

        jobs = GaugeMetricFamily("tailor_jobs", "Fine-tuning jobs by state.", labels=["state"])
        for state, count in data["jobs_by_state"].items():
            jobs.add_metric([state], count)
        yield jobs

        reaper = data["maintenance"]["reaper"]
        yield GaugeMetricFamily(
            "tailor_reaper_up", "1 while the reaper (beat, maintenance queue) runs on time.",
            value=0 if reaper["stale"] else 1,
        )  # fmt: skip
        survey = data["storage"]["survey"]
        if survey:
            stored = GaugeMetricFamily(
                "tailor_storage_bytes", "Bytes under the media folder by kind (last survey).",
                labels=["kind"],
            )  # fmt: skip
            for kind, size in survey["by_kind"].items():
                stored.add_metric([kind], size)
            yield stored
        yield GaugeMetricFamily(
            "tailor_disk_free_bytes", "Free bytes on the media folder's disk.",
            value=data["storage"]["disk"]["free"],
        )  # fmt: skip


def may_read(request) -> tuple[bool, int]:
    """Whether the request may read /metrics; when not, 401 (no credentials)
    or 403 (credentials of someone who may not)."""
    if request.user.is_authenticated:
        return (True, 200) if request.user.is_staff else (False, 403)
    parts = get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() not in (b"bearer", b"token"):
        return False, 401
    scraper = settings.TAILOR_METRICS_TOKEN
    if scraper and constant_time_compare(parts[1], scraper.encode()):
        return True, 200
    from studio.authentication import ApiTokenAuthentication

    try:
        found = ApiTokenAuthentication().authenticate(request)
    except exceptions.AuthenticationFailed:
        return False, 401
    if found is None:
        return False, 401
    return (True, 200) if found[0].is_staff else (False, 403)


def exposition() -> bytes:
    """The metrics' text: the fleet's, then the request latencies (summed over
    every web process in multiprocess mode)."""
    fleet = CollectorRegistry(auto_describe=False)
    fleet.register(StudioCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        latencies = CollectorRegistry()
        multiprocess.MultiProcessCollector(latencies)
        return generate_latest(fleet) + generate_latest(latencies)
    from prometheus_client import REGISTRY

    return generate_latest(fleet) + generate_latest(REGISTRY)


def metrics_response(request) -> HttpResponse:
    allowed, status = may_read(request)
    if not allowed:
        response = HttpResponse(
            "Staff only: log in as staff, or send a staff API token or the metrics token "
            "(TAILOR_METRICS_TOKEN) as 'Authorization: Bearer <token>'.\n",
            status=status, content_type="text/plain; charset=utf-8",
        )  # fmt: skip
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
