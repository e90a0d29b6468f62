"""What /healthz and the dashboard report: database, Redis, workers per queue.

`system_health()` has the details (error text, which may name hosts, ports
and paths; latencies; worker counts) for staff and API callers;
`without_details()` keeps what anyone may be told: up or not, overall and
per part.
"""

import time
from typing import TypedDict

import redis
from django.conf import settings
from django.db import connection

from studio.celery import app as celery_app


class Check(TypedDict, total=False):
    up: bool
    latency_ms: float
    error: str
    workers: int
    last_run_seconds_ago: float


def check_database() -> Check:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down", with its words
        return {"up": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"up": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def check_redis() -> Check:
    started = time.perf_counter()
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return {"up": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        client.close()
    return {"up": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def workers_by_queue(timeout: float = 1.0) -> dict[str, list[str]]:
    """Ask every live worker (a broadcast) which queues it consumes."""
    replies = celery_app.control.inspect(timeout=timeout).active_queues() or {}
    by_queue: dict[str, list[str]] = {name: [] for name in settings.TAILOR_QUEUES}
    for worker, queues in replies.items():
        for queue in queues:
            # Only the studio's queues: a serving worker's own one names it.
            if queue["name"] in by_queue:
                by_queue[queue["name"]].append(worker)
    return by_queue


def check_reaper() -> Check:
    """Whether beat's reaper ran lately (it takes back what dead workers held).
    Beat can die, or its queue's worker can, without any queue looking empty."""
    from studio.services import leases

    try:
        age = leases.reaper_last_run_age()
    except redis.RedisError as exc:
        return {"up": False, "error": f"{type(exc).__name__}: {exc}"}
    if age is None:
        return {
            "up": False,
            "error": (
                f"The reaper has not run for {leases.reaper_stale_after()} s: "
                "is celery beat running, with a worker on the maintenance queue?"
            ),
        }
    return {"up": True, "last_run_seconds_ago": round(age, 1)}


def system_health(timeout: float = 1.0) -> dict:
    """The state of every part the studio needs; `ok` is True when all are up."""
    database = check_database()
    redis_state = check_redis()
    queues: dict[str, Check] = {}
    if redis_state["up"]:
        try:
            by_queue = workers_by_queue(timeout)
        except Exception as exc:  # the broker went away between the two checks
            redis_state = {"up": False, "error": f"{type(exc).__name__}: {exc}"}
        else:
            for name, workers in by_queue.items():
                queues[name] = {"up": bool(workers), "workers": len(workers)}
    if not redis_state["up"]:
        queues = {
            name: {"up": False, "workers": 0, "error": "Redis is down"}
            for name in settings.TAILOR_QUEUES
        }
    reaper: Check = check_reaper() if redis_state["up"] else {"up": False, "error": "Redis is down"}
    ok = (
        database["up"]
        and redis_state["up"]
        and reaper["up"]
        and all(q["up"] for q in queues.values())
    )
    return {
        "ok": ok, "database": database, "redis": redis_state, "reaper": reaper, "queues": queues,
    }  # fmt: skip


def without_details(health: dict) -> dict:
    """`system_health()`'s answer cut to `ok` and each part's `up`.

    For callers nobody vouches for: a load balancer, a monitor, anyone on the
    network. A driver's error names the database host or the SQLite file's
    path, and a worker count tells the fleet's size; none of that is theirs.
    """
    return {
        "ok": health["ok"],
        **{part: {"up": health[part]["up"]} for part in ("database", "redis", "reaper")},
        "queues": {name: {"up": queue["up"]} for name, queue in health["queues"].items()},
    }
