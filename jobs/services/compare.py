"""Runs side by side (issue 18): a few of a user's jobs, their loss curves,
their figures, and the configuration fields in which they differ.

Contract of `compare(user, ids)`:

- `ids` is what a request sent: each value one id or a comma-separated list
  of them (`?ids=a,b` and `?ids=a&ids=b` read alike); blanks are ignored.
- 2 to 6 distinct job ids (UUIDs) are needed; otherwise `CompareError`,
  whose `code` and `message` say what to change ("Choose at least 2 jobs to
  compare; 1 was given."). Nothing is read from the database before then.
- Jobs are read only through `FineTuneJob.objects.for_user(user)`: an id of
  someone else's job raises the same Http404 ("No such job.") as an id that
  names nothing, so nobody learns that the job exists.
- The answer keeps the order of `ids`. It only reads: no side effects.

The configuration diff walks each job's resolved `config` document to its
leaves (dotted paths, `training.learning_rate`) and keeps the paths whose
values are not all equal; a path one job lacks counts as None there. The
dataset is compared as one more field, `data.dataset`: its name, the
revision whose rows the job linked in at creation (`dataset_revision`;
"revision unknown" for jobs made before it was kept) and the rows planned on.

Beside the curves each run carries its figures (what training stored, its
device time from usage's ledger and, where a price is set, its cost), and
its newest succeeded evaluation (serving's `Evaluation.results`): the
fine-tune's held-out figures and the sample answers, which `samples()` sets
side by side by prompt.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.http import Http404

from jobs.models import FineTuneJob, JobStatus, MetricKind, MetricPoint
from serving.models import Evaluation, EvaluationStatus
from usage.models import DeviceUse
from usage.services import prices
from usage.services.report import costs_shown

FEWEST, MOST = 2, 6
NOT_FOUND = "No such job."
# Held-out prompts set side by side, at most.
SAMPLES = 10

# The figures compared, and which way is better: lower for losses, perplexity
# and cost, higher for rates and speed; counts and durations are told, not ranked.
BETTER = {"loss": "lower", "score": "lower", "money": "lower", "rate": "higher", "speed": "higher"}
# An evaluation's figures of the fine-tune, as its results hold them.
EVALUATION_FIGURES = ("accuracy", "macro_f1", "exact_match", "rouge_l", "val_loss", "perplexity")


@dataclass(frozen=True)
class CompareError(Exception):
    """A request that names the jobs badly; `field` is always the parameter `ids`."""

    code: str
    message: str
    field: str = "ids"

    def __str__(self) -> str:
        return self.message


def _refused(code: str, **facts) -> CompareError:
    count = facts.get("count", 0)
    sentences = {
        "too_few": f"Choose at least {FEWEST} jobs to compare; "
        f"{count} {'was' if count == 1 else 'were'} given.",
        "too_many": f"Compare at most {MOST} jobs at once; {count} were given.",
        "malformed": f"“{facts.get('value', '')}” is not a job id (a UUID).",
        "duplicate": f"Job {facts.get('value', '')} is named twice; name each job once.",
    }
    return CompareError(code, sentences[code])


@dataclass(frozen=True)
class Point:
    step: int
    loss: float
    tokens: int  # tokens seen by this step (0 where the run did not count them)
    elapsed: float  # seconds since the attempt started


@dataclass
class Run:
    job: FineTuneJob
    train: list[Point] = field(default_factory=list)
    validation: list[Point] = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # name -> value (studio/figures.py names)
    evaluation: dict | None = None  # the newest succeeded evaluation's results

    @property
    def evaluation_figures(self) -> dict:
        """The fine-tune's held-out figures (and the rows scored); {} without an evaluation."""
        if not self.evaluation:
            return {}
        tuned = self.evaluation.get("fine_tuned") or {}
        found = {name: tuned.get(name) for name in EVALUATION_FIGURES if name in tuned}
        return {**found, "rows": self.evaluation.get("rows")}


@dataclass(frozen=True)
class Difference:
    field: str  # a dotted path into the config document, or data.dataset
    values: list  # one per run, in the runs' order


@dataclass
class Comparison:
    runs: list[Run]
    differences: list[Difference]

    @property
    def any_active(self) -> bool:
        return any(run.job.is_active for run in self.runs)


def read_ids(values) -> list[uuid.UUID]:
    """The distinct job ids `values` names, in order; CompareError otherwise."""
    raw = [part.strip() for value in values for part in str(value).split(",")]
    raw = [part for part in raw if part]
    if len(raw) < FEWEST:
        raise _refused("too_few", count=len(raw))
    if len(raw) > MOST:
        raise _refused("too_many", count=len(raw))
    ids: list[uuid.UUID] = []
    for part in raw:
        try:
            job_id = uuid.UUID(part)
        except ValueError:
            raise _refused("malformed", value=part[:40]) from None
        if job_id in ids:
            raise _refused("duplicate", value=job_id)
        ids.append(job_id)
    return ids


def compare(user, ids) -> Comparison:
    """The user's jobs named by `ids`, side by side (see the module's contract)."""
    wanted = read_ids(ids)
    jobs = FineTuneJob.objects.for_user(user).select_related("base_model", "dataset")
    found = {job.pk: job for job in jobs.filter(pk__in=wanted)}
    if len(found) != len(wanted):
        raise Http404(NOT_FOUND)
    runs = [Run(job=found[job_id]) for job_id in wanted]
    _add_points(runs)
    for run in runs:
        run.figures = _figures(run.job)
    _add_device_time(runs)
    _add_evaluations(runs)
    return Comparison(runs=runs, differences=differences([run.job for run in runs]))


def _add_points(runs: list[Run]) -> None:
    """Every stored point of the runs, a query per run. A resumed attempt has
    already deleted its predecessors' points past its checkpoint, so the
    stored points of a job are one curve by step. (Per run, not one query
    for all: reading each row's job id back as a UUID took 70 % of a page
    of 6 runs of 5,000 points; bench/compare.py.)"""
    for run in runs:
        points = MetricPoint.objects.filter(job_id=run.job.pk).order_by("step", "id")
        for kind, step, train_loss, val_loss, tokens, elapsed in points.values_list(
            "kind", "step", "train_loss", "val_loss", "tokens", "elapsed"
        ):
            if kind == MetricKind.TRAIN and train_loss is not None:
                run.train.append(Point(step, train_loss, tokens, elapsed))
            elif kind == MetricKind.EVAL and val_loss is not None:
                run.validation.append(Point(step, val_loss, tokens, elapsed))


def _figures(job: FineTuneJob) -> dict:
    """The run's figures: what training stored at its end (`final_metrics`),
    over what the job row holds so far (a running or failed job has no final ones)."""
    so_far = {
        "train_loss": job.train_loss,
        "val_loss": job.val_loss,
        "best_val_loss": job.best_val_loss,
        "runtime_seconds": job.took_seconds,
        "trained_tokens": job.trained_tokens or None,
        "tokens_per_second": job.tokens_per_second,
    }
    return {**so_far, **(job.final_metrics or {})}


# What makes a run the best, in order: the first of these some finished run has decides.
BEST_BY = (
    ("evaluation", "accuracy", "higher"),
    ("evaluation", "exact_match", "higher"),
    ("figures", "best_val_loss", "lower"),
    ("figures", "val_loss", "lower"),
)


@dataclass(frozen=True)
class Best:
    run: Run
    figure: str  # a studio/figures.py name
    value: float


def best(runs: list[Run]) -> Best | None:
    """The succeeded run with the best held-out figure: its evaluation's accuracy or
    exact match, else its validation loss; None when no succeeded run has one."""
    done = [run for run in runs if run.job.status == JobStatus.SUCCEEDED]
    for where, name, direction in BEST_BY:
        scored = []
        for run in done:
            found = run.evaluation_figures if where == "evaluation" else run.figures
            value = found.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                scored.append((value, run))
        if scored:
            pick = max if direction == "higher" else min
            value, run = pick(scored, key=lambda pair: pair[0])
            return Best(run, name, value)
    return None


def _add_device_time(runs: list[Run]) -> None:
    """Each run's device time (all attempts) and, where a price is set, its cost."""
    by_job = {run.job.pk: run for run in runs}
    spent: dict = {}
    for job_id, seconds, price in DeviceUse.objects.filter(job_id__in=by_job).values_list(
        "job_id", "seconds", "price_per_hour"
    ):
        total = spent.setdefault(job_id, [0.0, prices.cost(0, price)])
        total[0] += seconds
        total[1] += prices.cost(seconds, price)
    priced = costs_shown(any(cost > 0 for _, cost in spent.values()))
    for job_id, (seconds, cost) in spent.items():
        by_job[job_id].figures["device_seconds"] = seconds
        if priced:
            by_job[job_id].figures["cost"] = float(cost)


def _add_evaluations(runs: list[Run]) -> None:
    """The newest succeeded evaluation of each run, in one query."""
    by_job = {run.job.pk: run for run in runs}
    done = Evaluation.objects.filter(job_id__in=by_job, status=EvaluationStatus.SUCCEEDED)
    for job_id, results in done.order_by("job_id", "-finished_at").values_list("job_id", "results"):
        if by_job[job_id].evaluation is None:
            by_job[job_id].evaluation = results or {}


@dataclass(frozen=True)
class SampleRow:
    prompt: str
    reference: str
    answers: list  # per run: (its answer, whether it matched the reference) or None


def samples(runs: list[Run], most: int = SAMPLES) -> list[SampleRow]:
    """The held-out prompts that two or more runs' evaluations answered, each
    run's answer beside the others, in the order the first evaluation lists them."""
    answered = []
    for run in runs:
        rows = (run.evaluation or {}).get("samples") or []
        by_prompt: dict = {}
        for row in rows:
            if isinstance(row, dict) and isinstance(row.get("prompt"), str):
                by_prompt.setdefault(row["prompt"], row)
        answered.append(by_prompt)
    order = [prompt for by_prompt in answered for prompt in by_prompt]
    found = []
    for prompt in dict.fromkeys(order):
        rows = [by_prompt.get(prompt) for by_prompt in answered]
        if sum(row is not None for row in rows) < 2:
            continue
        reference = next(str(row.get("reference", "")) for row in rows if row is not None)
        answers = [
            None
            if row is None
            else (str(row.get("fine_tuned", "")), bool(row.get("fine_tuned_exact")))
            for row in rows
        ]
        found.append(SampleRow(prompt, reference, answers))
        if len(found) == most:
            break
    return found


def thinned(points: list[Point], most: int) -> list[Point]:
    """At most about `most` of `points` for drawing: the first and the last, and
    of each run of points between, the lowest and the highest loss (a spike
    stays a spike). Points in step order in, a subset in step order out."""
    if len(points) <= most or most < 4:
        return list(points)
    inner = points[1:-1]
    buckets = max(1, (most - 2) // 2)
    size = len(inner) / buckets
    kept = [points[0]]
    for number in range(buckets):
        bucket = inner[int(number * size) : int((number + 1) * size)]
        if bucket:
            low = min(bucket, key=lambda p: p.loss)
            high = max(bucket, key=lambda p: p.loss)
            kept.extend(sorted({low, high}, key=lambda p: p.step))
    kept.append(points[-1])
    return kept


# --- the configuration diff ------------------------------------------------------------


def leaves(document, prefix: str = "") -> dict:
    """{dotted path: value} of a document's leaves; a list is one value."""
    if not isinstance(document, dict) or (prefix and not document):
        return {prefix: document}
    found = {}
    for key, value in document.items():
        found.update(leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def differences(jobs: list[FineTuneJob]) -> list[Difference]:
    """The config paths (and the dataset) whose values are not all equal, in path order."""
    flat = [leaves(job.config or {}) for job in jobs]
    for job, values in zip(jobs, flat, strict=True):
        named = f"{job.dataset.name} [{str(job.dataset_id)[:8]}]"
        values["data.dataset"] = f"{named}, {_revision(job)} ({_rows(job)})"
    paths = sorted(set().union(*flat))
    found = []
    for path in paths:
        values = [values_of.get(path) for values_of in flat]
        if any(value != values[0] for value in values[1:]):
            found.append(Difference(path, values))
    return found


def _revision(job: FineTuneJob) -> str:
    known = job.dataset_revision
    return "revision unknown" if known is None else f"revision {known:,}"


def _rows(job: FineTuneJob) -> str:
    rows = (job.plan or {}).get("rows")
    return "rows unknown" if rows is None else f"{rows:,} rows"
