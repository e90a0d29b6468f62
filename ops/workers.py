"""Workers' heartbeats in Redis: written by each worker, read by /ops/ and /metrics.

The contract. Every TAILOR_WORKER_HEARTBEAT_SECONDS a worker's parent
process writes, in one pipeline:

- `tailor:ops:worker:<name>`: its record (JSON: host, queues, concurrency,
  uptime, versions, GPUs, memory, what its pool holds), kept for
  FORGET_AFTER_BEATS intervals;
- `tailor:ops:alive:<name>`: a key that lives STALE_AFTER_BEATS intervals
  (its value says how long), so that "stopped reporting" and the last
  heartbeat's age are read from Redis's clock, never by comparing a
  worker's clock with the web's;
- its name in the `tailor:ops:workers` set, the index readers walk (no
  KEYS or SCAN over a database that also holds rate-limit counters).

A worker that stops reporting is shown red until its record expires; a
worker that shuts down cleanly deletes both keys. What a worker runs now is
not here: it comes from the ledger (rows whose `worker` column names it).
"""

from __future__ import annotations

import json
import logging

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

INDEX_KEY = "tailor:ops:workers"
# A worker that missed this many beats has stopped reporting (red).
STALE_AFTER_BEATS = 3
# Its record is forgotten after this many: an operator has minutes to see it red.
FORGET_AFTER_BEATS = 30


def record_key(name: str) -> str:
    return f"tailor:ops:worker:{name}"


def alive_key(name: str) -> str:
    return f"tailor:ops:alive:{name}"


def pool_key(name: str) -> str:
    """What the worker's pool child holds in memory (serving's loaded models)."""
    return f"tailor:ops:pool:{name}"


def client() -> redis.Redis:
    from jobs.services.lifecycle import flags_client

    return flags_client()


def interval() -> int:
    return settings.TAILOR_WORKER_HEARTBEAT_SECONDS


def write(record: dict, *, connection: redis.Redis | None = None) -> None:
    """Store one heartbeat (`record["name"]` names the worker). Raises RedisError."""
    connection = connection or client()
    name = record["name"]
    stale, forget = STALE_AFTER_BEATS * interval(), FORGET_AFTER_BEATS * interval()
    pipe = connection.pipeline(transaction=False)
    pipe.set(record_key(name), json.dumps(record), ex=forget)
    pipe.set(alive_key(name), stale, ex=stale)
    pipe.sadd(INDEX_KEY, name)
    pipe.execute()


def forget(name: str) -> None:
    """A worker that stops on purpose leaves no red row behind."""
    try:
        client().delete(record_key(name), alive_key(name), pool_key(name))
        client().srem(INDEX_KEY, name)
    except redis.RedisError:
        logger.warning("Could not remove the heartbeat of %s", name)


def read_all() -> list[dict]:
    """Every worker with a record, sorted by name, each with `reporting`
    (False: red) and `last_beat_seconds_ago` (None when not reporting).
    Three round trips whatever the number of workers. Raises RedisError."""
    connection = client()
    names = sorted(name.decode() for name in connection.smembers(INDEX_KEY))
    if not names:
        return []
    pipe = connection.pipeline(transaction=False)
    pipe.mget([record_key(name) for name in names])
    pipe.mget([alive_key(name) for name in names])
    for name in names:
        pipe.pttl(alive_key(name))
    records, lived, *ttls = pipe.execute()
    workers, gone = [], []
    for name, raw, life, ttl in zip(names, records, lived, ttls, strict=True):
        if raw is None:
            gone.append(name)
            continue
        record = json.loads(raw)
        age = None
        if life is not None and ttl is not None and ttl >= 0:
            age = max(0.0, float(life) - ttl / 1000)
        record["reporting"] = age is not None
        record["last_beat_seconds_ago"] = age
        if age is not None:
            record["uptime_seconds"] = record.get("uptime_seconds", 0) + age
        workers.append(record)
    if gone:  # records that expired: their names leave the index too
        connection.srem(INDEX_KEY, *gone)
    return workers
