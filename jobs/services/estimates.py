"""Before Start: about how long a job takes and how much memory it needs, and
how sure that is.

Time is the plan's tokens over a rate, plus a fixed cost per job (loading the
base, tokenising, the final evaluation, saving). The rate is what this
studio's workers measured: the median tokens per second of the recent
succeeded jobs on the same base model with the same adapter method. With no
such job yet it is a guess from the usual FLOP count of a transformer step
(6 × parameters per trained token for a full fine-tune; about 4 × for LoRA,
which skips the weight gradients of the frozen base) over the training
device's throughput (`TAILOR_TRAIN_FLOPS`), and it says so.

Memory is `memory_bytes` alone: the wizard's method cards, its estimate and
the job page all read it, so they show one figure for one choice.

Cost is the time at the price of a device-hour of the training workers'
device (usage/services/prices.py: the dearest one reporting, else the
default price); none when that price is 0.
"""

import statistics
from dataclasses import dataclass

from django.conf import settings

from jobs.config import JobConfig, Plan, TrainingConfig
from jobs.human import human_bytes, human_duration
from jobs.models import FineTuneJob, JobStatus
from jobs.services.catalog import memory_estimate
from jobs.vocabulary import ADAPTER_NAMES, Adapter
from usage.services import prices

_FLOPS_PER_TOKEN_AND_PARAMETER = {Adapter.FULL: 6.0, Adapter.LORA: 4.0, Adapter.QLORA: 4.0}
# QLoRA dequantises every 4-bit weight on each use: measured 0.39 vs 0.37 s
# a step against LoRA on tailor-tiny (CPU, float32 compute).
_METHOD_SLOWDOWN = {Adapter.FULL: 1.0, Adapter.LORA: 1.0, Adapter.QLORA: 1.05}
# Loading the base, tokenising, the final evaluation and saving: a fixed
# cost per job (about 30 s for tailor-tiny on 2 CPU cores), until this
# studio has measured its own.
_SETUP_SECONDS = 30
# How many of the newest succeeded runs the measured rate is the median of:
# enough that one run on a busy machine does not move it, few enough that a
# new GPU shows within a week's jobs.
RECENT_RUNS = 10


@dataclass(frozen=True)
class Speed:
    """How fast a model and method train here: planned tokens per second of
    training, and the seconds a job spends besides."""

    tokens_per_second: float
    setup_seconds: float
    runs: int  # the measured runs it comes from; 0: a guess from FLOPs


def guessed_speed(model, method: str) -> Speed:
    flops_per_token = (
        _FLOPS_PER_TOKEN_AND_PARAMETER[method] * model.parameters * _METHOD_SLOWDOWN[method]
    )
    return Speed(settings.TAILOR_TRAIN_FLOPS / flops_per_token, _SETUP_SECONDS, runs=0)


def _measured_run(job: FineTuneJob) -> tuple[float, float | None] | None:
    """(planned tokens per second of training, seconds besides training) of a
    succeeded job, or None when it recorded no rate."""
    rate = (job.final_metrics or {}).get("tokens_per_second") or job.tokens_per_second
    if not rate or rate <= 0:
        return None
    planned = (job.plan or {}).get("total_tokens")
    if not (job.trained_tokens and planned):
        return rate, None
    # The worker counts the tokens it fed (padding included); the plan counts
    # the data's. Time per planned token is what an estimate multiplies by.
    training_seconds = job.trained_tokens / rate
    setup = None
    if job.attempt == 1 and job.started_at and job.finished_at:
        # One attempt: its wall time is training plus the fixed cost, no wait.
        wall = (job.finished_at - job.started_at).total_seconds()
        setup = max(wall - training_seconds, 0.0)
    return planned / training_seconds, setup


# What _measured_run reads, and not the configuration or estimate documents.
_MEASURED_FIELDS = (
    "final_metrics", "tokens_per_second", "plan", "trained_tokens", "attempt", "started_at",
    "finished_at",
)  # fmt: skip


def measured_speed(model, method: str) -> Speed | None:
    """The median speed of this studio's recent succeeded runs of `model`
    with `method`; None before the first."""
    jobs = (
        FineTuneJob.objects.filter(base_model=model, method=method, status=JobStatus.SUCCEEDED)
        .order_by("-finished_at")
        .only(*_MEASURED_FIELDS)[:RECENT_RUNS]
    )
    runs = [run for job in jobs if (run := _measured_run(job)) is not None]
    if not runs:
        return None
    setups = [setup for _, setup in runs if setup is not None]
    return Speed(
        tokens_per_second=statistics.median(rate for rate, _ in runs),
        setup_seconds=statistics.median(setups) if setups else _SETUP_SECONDS,
        runs=len(runs),
    )


def memory_bytes(model, method: str, training: TrainingConfig) -> int:
    """Approximate peak memory of training `model` with `method` at the
    batch size and sequence length of `training`."""
    return memory_estimate(
        model.parameters,
        method,
        batch_size=training.batch_size,
        max_seq_length=training.max_seq_length,
    )


def estimate(model, config: JobConfig, plan: Plan) -> dict:
    """What a job stores as its estimate (and the API returns): tokens, steps,
    seconds and memory_bytes, `runs`, the measured runs the time comes from
    (0: a guess), and the cost of those seconds: `device` ("" when no
    training worker reports), `price_per_device_hour`, `cost` (None when
    that price is 0) and `currency`."""
    method = config.model.method
    speed = measured_speed(model, method) or guessed_speed(model, method)
    seconds = plan.total_tokens / speed.tokens_per_second + speed.setup_seconds
    return {
        "tokens": plan.total_tokens,
        "steps": plan.total_steps,
        "seconds": round(seconds),
        "memory_bytes": memory_bytes(model, method, config.training),
        "runs": speed.runs,
        **prices.priced_estimate(round(seconds)),
    }


# --- in words ---------------------------------------------------------------------


def basis(estimate: dict, method: str) -> str:
    """How sure a time estimate is, in words (an estimate may carry its own)."""
    if estimate.get("basis"):
        return estimate["basis"]
    runs = estimate.get("runs") or 0
    with_method = f"with {ADAPTER_NAMES.get(method, method)}"
    if not runs:
        return f"rough guess: no run of this model {with_method} here yet"
    return f"from {runs:,} run{'s' if runs != 1 else ''} of this model {with_method} here"


def cost_basis(estimate: dict) -> str:
    """What a cost estimate is priced at, in words ("" when it has no cost)."""
    if estimate.get("cost") is None:
        return ""
    price = prices.hourly(estimate["price_per_device_hour"], estimate.get("currency"))
    device = estimate.get("device")
    return f"at {price}" + (f" ({device})" if device else "")


def in_words(estimate: dict, method: str) -> dict:
    """An estimate as pages show it: duration, memory, how sure the time is,
    and the cost ("" when none is shown) with what it is priced at."""
    memory = estimate.get("memory_bytes")
    cost = estimate.get("cost")
    return {
        "duration": human_duration(estimate.get("seconds")),
        "memory": human_bytes(memory) if memory else "—",
        "basis": basis(estimate, method),
        "cost": "" if cost is None else prices.money(cost, estimate.get("currency")),
        "cost_basis": cost_basis(estimate),
    }


def job_page_figures(job: FineTuneJob) -> dict:
    """The job page's estimate, worded as the wizard worded it before Start:
    `estimate_duration`, `estimate_memory`, `estimate_basis` and `estimate_cost`."""
    words = in_words(job.estimate or {}, job.method)
    return {
        "estimate_duration": words["duration"],
        "estimate_memory": words["memory"],
        "estimate_basis": words["basis"],
        "estimate_cost": words["cost"],
    }
