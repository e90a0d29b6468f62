"""The Compare page: a few jobs' loss curves overlaid, the configuration
fields in which they differ, their figures and evaluations side by side
(issue 18).

The chart is drawn by static/js/compare.js (uPlot, as the job page's) from
the curves embedded in the page as JSON: each series thinned to at most
MAX_DRAWN points (compare.thinned keeps spikes), each run a colour of
tailor.css's .run-<n>, training loss solid, validation loss dashed with dots.
The view (`x`: step, tokens or time; `log`: a log loss axis) is in the
address, so a shared link opens as it was seen. While a run is active the
script follows it over its job socket (jobs/consumers.py: the points after
the last one drawn, then each as it is logged), and the figures below the
chart are fetched again every REFRESH_SECONDS (htmx, `compare-live`) until
no run is active.
"""

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from jobs.models import JobStatus
from jobs.services import compare as comparing
from studio import figures

REFRESH_SECONDS = 10
# Points drawn per series at most; a run's 5,000 logged steps read the same at 1,000.
MAX_DRAWN = 1000
# What the chart's x axis can be: the value in the address, and its words.
X_AXES = {"step": "Step", "tokens": "Tokens seen", "time": "Time"}


def read_view(params) -> tuple[str, bool]:
    """The chart's x axis and whether its loss axis is logarithmic (else the defaults)."""
    x = params.get("x")
    return (x if x in X_AXES else "step"), params.get("log") in ("1", "on", "true")


def chart_data(comparison: comparing.Comparison, x: str = "step", log: bool = False) -> dict:
    """What compare.js draws: per run its colour's place, whether to follow it
    live, and its curves as [step, loss, tokens, elapsed] rows."""

    def rows(points):
        return [[p.step, p.loss, p.tokens, p.elapsed] for p in comparing.thinned(points, MAX_DRAWN)]

    return {
        "x": x,
        "log": log,
        "runs": [
            {
                "id": str(run.job.pk),
                "name": run.job.name,
                "place": place,
                "active": run.job.is_active,
                "attempt": run.job.attempt,
                "ws": f"/ws/jobs/{run.job.pk}/",
                "train": rows(run.train),
                "validation": rows(run.validation),
            }
            for place, run in enumerate(comparison.runs)
        ],
    }


def describe(comparison: comparing.Comparison) -> str:
    """What the chart shows, in words, for a screen reader (compare.js rewords it live)."""
    parts = []
    for run in comparison.runs:
        last = run.train[-1] if run.train else None
        said = f"{run.job.name}: {len(run.train):,} training points"
        if last is not None:
            said += f", last training loss {last.loss:.4f} at step {last.step:,}"
        if run.validation:
            said += f", last validation loss {run.validation[-1].loss:.4f}"
        parts.append(said)
    return "Loss of each run. " + "; ".join(parts) + "."


@dataclass(frozen=True)
class FigureRow:
    name: str
    label: str
    cells: list[tuple[str, bool]]  # (the value as words, whether it is the best)


def figure_rows(per_run: list[dict]) -> list[FigureRow]:
    """Each figure some run has (`per_run`: one {name: value} per run), one row,
    the best value marked where one way is better."""
    names = {name for found in per_run for name, v in found.items() if v is not None}
    rows = []
    for name, _ in figures.in_order(dict.fromkeys(names)):
        values = [found.get(name) for found in per_run]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        direction = comparing.BETTER.get(figures.kind(name))
        best = None
        if direction and len(numbers) >= 2 and len(set(numbers)) > 1:
            best = min(numbers) if direction == "lower" else max(numbers)
        cells = [(figures.value(name, v), best is not None and v == best) for v in values]
        rows.append(FigureRow(name, figures.label(name), cells))
    return rows


def config_value(value) -> str:
    """A configuration value as the table shows it: 0.0002, 16, yes, all-linear, —."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(config_value(item) for item in value) or "none"
    return str(value)


@dataclass(frozen=True)
class SampleCell:
    answer: str | None  # None: this run's evaluation did not answer the prompt
    exact: bool


def page_context(comparison: comparing.Comparison, x: str = "step", log: bool = False) -> dict:
    runs = comparison.runs
    evaluated = [run for run in runs if run.evaluation]
    samples = [
        (row, [SampleCell(*(answer or (None, False))) for answer in row.answers])
        for row in comparing.samples(runs)
    ]
    return {
        "comparison": comparison,
        "runs": runs,
        "ids": ",".join(str(run.job.pk) for run in runs),
        "chart_data": chart_data(comparison, x, log),
        "chart_description": describe(comparison),
        "has_points": any(run.train or run.validation for run in runs),
        "x_axes": X_AXES,
        "x": x,
        "log": log,
        "figure_rows": figure_rows([run.figures for run in runs]),
        "evaluated": len(evaluated),
        "evaluation_rows": figure_rows([run.evaluation_figures for run in runs]),
        "samples": samples,
        "best": _best(runs),
        "differences": [
            (d.field, [config_value(v) for v in d.values]) for d in comparison.differences
        ],
        "succeeded": JobStatus.SUCCEEDED,
        "refresh_seconds": REFRESH_SECONDS,
    }


def _best(runs) -> dict | None:
    found = comparing.best(runs)
    if found is None:
        return None
    return {
        "job": found.run.job,
        "place": runs.index(found.run),
        "label": figures.label(found.figure).lower(),
        "value": figures.value(found.figure, found.value),
    }


@login_required
@require_GET
def job_compare(request):
    """/jobs/compare/?ids=a,b (or ?ids=a&ids=b): 2 to 6 of the user's jobs."""
    try:
        comparison = comparing.compare(request.user, request.GET.getlist("ids"))
    except comparing.CompareError as refused:
        return render(request, "jobs/job_compare.html", {"refused": refused}, status=400)
    template = "jobs/job_compare.html"
    if request.htmx:
        template += "#compare-live"
    return render(request, template, page_context(comparison, *read_view(request.GET)))
