"""A Celery worker's heartbeat: its parent process reports itself to Redis
every TAILOR_WORKER_HEARTBEAT_SECONDS from a daemon thread (ops/workers.py
says where and for how long).

Before that, on `celeryd_after_setup`, a worker adds the queues its
capability earns it (studio/services/capacity.py): a training worker the
memory classes its memory reaches, a serving worker a queue of its own. The
record says what routing reads: the device, the memory it counts, the
classes it takes, and the models on its disk and in its pool.

Started on `worker_ready`, in the parent (it outlives the pool children a
training worker recycles after every job), stopped on `worker_shutdown`.
The pool child of a serving worker leaves a snapshot of the models it holds
after each task (`task_postrun`); the parent folds it into its beat while
that child lives.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import UTC, datetime

import redis
from celery.signals import celeryd_after_setup, task_postrun, worker_ready, worker_shutdown

from ops import facts, workers
from studio.services import capacity

logger = logging.getLogger(__name__)

# The tasks whose process keeps models loaded between requests.
SERVING_TASKS = ("serving.generate", "serving.evaluate")


class Heartbeat(threading.Thread):
    """Writes the worker's record now and then every interval until stopped."""

    def __init__(self, name: str, queues: list[str], concurrency: int):
        super().__init__(name="ops-heartbeat", daemon=True)
        self.worker_name, self.queues, self.concurrency = name, queues, concurrency
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.done = threading.Event()
        self.facts = {**facts.static_facts(), **capacity.this_worker()}

    def record(self) -> dict:
        return {
            "name": self.worker_name,
            "pid": os.getpid(),
            "queues": self.queues,
            "concurrency": self.concurrency,
            "started_at": self.started_at,
            "uptime_seconds": round(time.monotonic() - self.started, 1),
            **self.facts,
            "gpus": facts.gpus(),
            "memory_used": facts.process_tree_rss(os.getpid()),
            "memory_classes": capacity.worker_classes({"queues": self.queues}),
            "cached_models": facts.cached_models(),
            "loaded": self.loaded(),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def loaded(self) -> list[dict] | None:
        """The models a live pool child of this worker holds (None: it keeps none)."""
        connection, key = workers.client(), workers.pool_key(self.worker_name)
        raw = connection.get(key)
        if raw is None:
            return None
        snapshot = json.loads(raw)
        if not _alive(snapshot.get("pid")):
            return None
        # The child writes only after a task: an idle one's models stay listed.
        connection.expire(key, workers.FORGET_AFTER_BEATS * workers.interval())
        return snapshot.get("models", [])

    def beat(self) -> None:
        try:
            workers.write(self.record())
        except redis.RedisError as exc:
            # Redis comes back; the next beat reports again. Never raises:
            # a heartbeat must not take its worker down.
            logger.warning("Could not report the worker's heartbeat: %s", exc)
        except Exception:
            logger.exception("The worker's heartbeat failed")

    def run(self) -> None:
        self.beat()
        while not self.done.wait(workers.interval()):
            self.beat()

    def stop(self) -> None:
        self.done.set()
        if self is not threading.current_thread():
            self.join(timeout=5)
        workers.forget(self.worker_name)


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


@celeryd_after_setup.connect
def consume_capability_queues(sender, instance, **kwargs) -> None:
    """`sender` is the worker's name; its queues are chosen (`-Q`) but not
    yet consumed: add the classes its memory reaches, or its own queue."""
    queues = instance.app.amqp.queues
    consumed = set(queues.consume_from)
    memory_gib = capacity.this_worker()["memory_gib"]
    for name in capacity.worker_queues(consumed, sender, memory_gib):
        queues.select_add(name)


# This process's heartbeat (one per worker parent), in a dict: no `global`.
_running: dict[str, Heartbeat] = {}


@worker_ready.connect
def start_heartbeat(sender, **kwargs) -> None:
    """`sender` is the worker's consumer; its controller knows the pool's size."""
    queues = sorted(sender.app.amqp.queues.consume_from)
    concurrency = getattr(sender.controller, "concurrency", None) or 1
    heartbeat = Heartbeat(sender.hostname, queues, int(concurrency))
    _running["worker"] = heartbeat
    heartbeat.start()


@worker_shutdown.connect
def stop_heartbeat(**kwargs) -> None:
    heartbeat = _running.pop("worker", None)
    if heartbeat is not None:
        heartbeat.stop()


@task_postrun.connect
def snapshot_loaded_models(sender=None, **kwargs) -> None:
    """In a serving worker's pool child, after each task: what its model pool
    holds, for the parent's next beat."""
    if sender is None or sender.name not in SERVING_TASKS:
        return
    from serving.worker import model_pool

    hostname = getattr(sender.request, "hostname", None)
    if not hostname:
        return
    snapshot = {"pid": os.getpid(), "models": model_pool().stats()}
    try:
        workers.client().set(
            workers.pool_key(hostname),
            json.dumps(snapshot),
            ex=workers.FORGET_AFTER_BEATS * workers.interval(),
        )
    except redis.RedisError as exc:
        logger.warning("Could not record the loaded models: %s", exc)
