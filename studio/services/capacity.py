"""Workers by capability: which training worker can hold a job (memory
classes), and which serving worker already holds a base (its own queue).

The contract.

- Memory classes. `TAILOR_MEMORY_CLASSES` lists boundaries in GiB (e.g.
  8,16,24,48,80; unset: one class). A job's class is the smallest boundary
  at or above its estimated peak memory (`estimate["memory_bytes"]`,
  jobs/services/estimates.py); above the largest it is the largest. Its
  queue (`queue_for_memory`) is plain `train` for the smallest class, so
  that every training worker (old setups and the tests' included) takes
  small jobs, and `train.<boundary>gib` for a larger one.
- A training worker (one that consumes `train`) also consumes, from its
  start (`worker_queues`, on Celery's `celeryd_after_setup`), the queue of
  every larger class whose boundary its memory reaches: a big worker takes
  small jobs too. Its memory (`this_worker`) is TAILOR_WORKER_MEMORY_GB
  when set (a shared device, a test), else its GPU's, else the host's (a
  CPU worker), in whole GiB rounded to the nearest: an "80 GB" H100 reports
  79.6 GiB and a 24 GB card 23.99, and each counts in the class it is sold as.
- A serving worker (one that consumes `infer`) also consumes a queue of
  its own, `infer.<its name>` (`own_infer_queue`): serving/work.py sends a
  request there when that worker's heartbeat says it has the base loaded.
- `shortfall(memory, fleet)`: why none of the training workers reporting
  now (`training_fleet`, from their heartbeats: ops/workers.py) can hold a
  job, in words, or None when one can. fair_share keeps such a job queued,
  unreleased, and its standing says so.

Trade-offs. Classes are coarse on purpose: with 8,16,24 a 20 GiB worker
takes jobs up to 16 GiB and a 20 GiB job waits for a 24 GiB worker; choose
boundaries at the sizes of the fleet's devices. Above the largest boundary
any worker of that class may take a job: make the largest boundary the
largest device. With no training worker reporting at all (the studio
starting, no heartbeat written yet) nothing is held back: "none is big
enough" cannot be told from "none has reported yet", and the broker keeps
the job for the first worker of its class.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import redis
from django.conf import settings

from studio.env import EnvError, env_list

GIB = 2**30
TRAIN = "train"
INFER = "infer"
CPU = "cpu"


def memory_classes(name: str) -> tuple[int, ...]:
    """The boundaries in the environment variable `name`, smallest first
    (settings.py reads TAILOR_MEMORY_CLASSES with it). Raises EnvError."""
    raw = env_list(name, [])
    try:
        bounds = sorted({int(item) for item in raw})
    except ValueError:
        bounds = []
    if len(bounds) != len(set(raw)) or any(bound < 1 for bound in bounds):
        raise EnvError(
            f"{name}={','.join(raw)!r} must list whole numbers of GiB, each at least 1 and "
            "none twice, e.g. 8,16,24,48,80"
        )
    return tuple(bounds)


def classes() -> tuple[int, ...]:
    return tuple(settings.TAILOR_MEMORY_CLASSES)


def class_queue(boundary: int) -> str:
    return f"{TRAIN}.{boundary}gib"


def training_queues() -> tuple[str, ...]:
    """Every queue training work may be sent to: `train`, then the larger classes'."""
    return (TRAIN, *(class_queue(bound) for bound in classes()[1:]))


def class_of(memory_bytes: int | None) -> int | None:
    """The boundary of a job's class (GiB); None with no classes."""
    bounds = classes()
    if not bounds:
        return None
    return next((bound for bound in bounds if (memory_bytes or 0) <= bound * GIB), bounds[-1])


def queue_for_memory(memory_bytes: int | None) -> str:
    """The queue of a job whose estimated peak memory is `memory_bytes`."""
    bound = class_of(memory_bytes)
    return TRAIN if bound is None or bound == classes()[0] else class_queue(bound)


def job_memory(job) -> int:
    """A job's estimated peak memory in bytes (0: not estimated)."""
    return int((job.estimate or {}).get("memory_bytes") or 0)


def training_queue(job) -> str:
    """Where a job's training (and its export) is sent: its class's queue."""
    return queue_for_memory(job_memory(job))


def class_label(queue: str) -> str:
    """A training queue's class in words: "up to 8 GiB", "16 GiB", "any size"."""
    bounds = classes()
    if queue == TRAIN:
        return f"up to {bounds[0]:,} GiB" if len(bounds) > 1 else "any size"
    bound = int(queue.removeprefix(f"{TRAIN}.").removesuffix("gib"))
    return f"over {bounds[-2]:,} GiB" if bound == bounds[-1] else f"up to {bound:,} GiB"


# --- a worker's own side ---------------------------------------------------------------


def training_gpu(found_facts: dict) -> dict | None:
    """The GPU a worker trains on: the first CUDA_VISIBLE_DEVICES names (an
    index), else the first; none for a CPU build of torch or no GPU."""
    gpus = found_facts.get("gpus") or []
    if not found_facts.get("cuda") or not gpus:
        return None
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    index = int(first) if first.isdigit() and int(first) < len(gpus) else 0
    return gpus[index]


def capability(found_facts: dict) -> dict:
    """What a worker's heartbeat says of its capability: `device` (the GPU's
    name or "cpu"), `memory_gib` (what routing counts) and `memory_from`
    ("setting", "gpu" or "host")."""
    gpu = training_gpu(found_facts)
    device = gpu["name"] if gpu else CPU
    if settings.TAILOR_WORKER_MEMORY_GB:
        return {"device": device, "memory_gib": settings.TAILOR_WORKER_MEMORY_GB,
                "memory_from": "setting"}  # fmt: skip
    if gpu:
        return {"device": device, "memory_gib": round(gpu["memory_total"] / GIB),
                "memory_from": "gpu"}  # fmt: skip
    total = found_facts.get("memory_total") or 0
    return {"device": device, "memory_gib": round(total / GIB), "memory_from": "host"}


@functools.cache
def this_worker() -> dict:
    """This worker process's capability, measured once (nvidia-smi, /proc)."""
    from ops import facts

    return capability({**facts.static_facts(), "gpus": facts.gpus()})


def own_infer_queue(worker_name: str) -> str:
    return f"{INFER}.{worker_name}"


def worker_queues(consumed: set[str], worker_name: str, memory_gib: int) -> list[str]:
    """The queues a worker consumes besides those it was started on: a
    training worker its classes' (those its memory reaches), a serving
    worker its own."""
    added = []
    if TRAIN in consumed:
        added += [class_queue(bound) for bound in classes()[1:] if bound <= memory_gib]
    if INFER in consumed:
        added.append(own_infer_queue(worker_name))
    return [queue for queue in added if queue not in consumed]


def worker_classes(record: dict) -> list[str]:
    """The classes a worker's heartbeat says it takes, in words ([]: not a training worker)."""
    queues = set(record.get("queues") or ())
    if TRAIN not in queues:
        return []
    return [class_label(queue) for queue in training_queues() if queue in queues]


# --- the fleet, from heartbeats -----------------------------------------------------------


@dataclass(frozen=True)
class TrainingWorker:
    """A training worker reporting now (memory None: a record from before
    capabilities were reported, taken to hold anything)."""

    name: str
    memory_gib: int | None
    queues: frozenset[str]

    def holds(self, queue: str, memory_bytes: int) -> bool:
        return queue in self.queues and (
            self.memory_gib is None or memory_bytes <= self.memory_gib * GIB
        )


def training_fleet() -> list[TrainingWorker]:
    """The training workers whose heartbeat is live, largest first ([] when
    none reports or Redis cannot say: then nothing is held back)."""
    from ops import workers

    try:
        found = workers.read_all()
    except redis.RedisError:
        return []
    fleet = [
        TrainingWorker(record["name"], record.get("memory_gib"), frozenset(record["queues"]))
        for record in found
        if record.get("reporting") and TRAIN in (record.get("queues") or ())
    ]
    return sorted(fleet, key=lambda worker: (-(worker.memory_gib or 0), worker.name))


def _gib(memory_bytes: int) -> str:
    """Bytes as GiB rounded up to a tenth, without a trailing ".0": 30 GiB, 0.4 GiB."""
    tenths = math.ceil(memory_bytes * 10 / GIB)
    return f"{tenths // 10:,} GiB" if tenths % 10 == 0 else f"{tenths / 10:,.1f} GiB"


def shortfall(memory_bytes: int, fleet: list[TrainingWorker]) -> str:
    """Why no worker of `fleet` can hold a job of that estimated memory, as
    the end of a sentence; "" when one can, or when none reports at all."""
    if not fleet:
        return ""
    queue = queue_for_memory(memory_bytes)
    if any(worker.holds(queue, memory_bytes) for worker in fleet):
        return ""
    bound = class_of(memory_bytes)
    needed = memory_bytes
    if queue != TRAIN and memory_bytes <= (bound or 0) * GIB:
        needed = bound * GIB  # a class's worker: smaller ones do not take its queue
    largest = fleet[0]
    if largest.memory_gib is not None and largest.memory_gib * GIB >= needed:
        return (
            f"waiting for a training worker that takes the {queue} queue; none of those "
            "connected does (are their TAILOR_MEMORY_CLASSES the studio's?)"
        )
    has = "unknown memory" if largest.memory_gib is None else f"{largest.memory_gib:,} GiB"
    return (
        f"waiting for a training worker with {_gib(needed)}; the largest connected one "
        f"has {has} ({largest.name})"
    )
