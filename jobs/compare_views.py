"""The Compare page: a few jobs' loss curves overlaid, the configuration
fields in which they differ, and their figures side by side (issue 18).

The chart is an SVG drawn here, in the page (no script, nothing inline for
the Content-Security-Policy to refuse): each run is a colour class of
tailor.css, training loss a solid line, validation loss a dashed one with
dots. While any compared job is active the page fetches its figures again
(htmx, `compare-live`), and stops once none is.
"""

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from jobs.models import JobStatus
from jobs.services import compare as comparing
from studio import figures

# The chart's drawing area, in SVG units; CSS scales it to the page's width.
WIDTH, HEIGHT = 480, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 12, 12, 40
TICKS = 5
REFRESH_SECONDS = 10


@dataclass(frozen=True)
class Tick:
    at: float  # x or y in SVG units
    label: str


@dataclass(frozen=True)
class Line:
    colour: int  # the run's place: tailor.css's .run-<n>
    kind: str  # "train" or "validation"
    points: str  # the polyline's "x,y x,y …"
    dots: list[tuple[float, float]]


def _scale(low: float, high: float, start: float, end: float):
    span = (high - low) or 1.0
    return lambda value: round(start + (value - low) / span * (end - start), 1)


def _loss_label(value: float, span: float) -> str:
    decimals = 2 if span >= 0.5 else 3 if span >= 0.05 else 4
    return f"{value:,.{decimals}f}"


def chart(comparison: comparing.Comparison) -> dict | None:
    """The overlaid loss chart's lines and ticks; None when no run logged a loss."""
    series = [(run, run.train, run.validation) for run in comparison.runs]
    points = [p for _, train, validation in series for p in (*train, *validation)]
    if not points:
        return None
    last_step = max(*(p.step for p in points), 1)
    low, high = min(p.loss for p in points), max(p.loss for p in points)
    pad = (high - low) * 0.05 or 0.05
    low, high = max(0.0, low - pad), high + pad
    x = _scale(0, last_step, LEFT, WIDTH - RIGHT)
    y = _scale(low, high, HEIGHT - BOTTOM, TOP)
    lines = []
    for place, (_, train, validation) in enumerate(series):
        for kind, curve in (("train", train), ("validation", validation)):
            if curve:
                xy = [(x(p.step), y(p.loss)) for p in curve]
                joined = " ".join(f"{a},{b}" for a, b in xy)
                dots = xy if kind == "validation" else []
                lines.append(Line(place, kind, joined, dots))
    steps = sorted({round(last_step * i / (TICKS - 1)) for i in range(TICKS)})
    levels = [low + (high - low) * i / (TICKS - 1) for i in range(TICKS)]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": HEIGHT - BOTTOM,
        "lines": lines,
        "x_ticks": [Tick(x(step), f"{step:,}") for step in steps],
        "y_ticks": [Tick(y(loss), _loss_label(loss, high - low)) for loss in levels],
        "description": _describe(comparison),
    }


def _describe(comparison: comparing.Comparison) -> str:
    """What the chart shows, in words, for a screen reader."""
    parts = []
    for run in comparison.runs:
        last = run.train[-1] if run.train else None
        said = f"{run.job.name}: {len(run.train):,} training points"
        if last is not None:
            said += f", last training loss {last.loss:.4f} at step {last.step:,}"
        if run.validation:
            said += f", last validation loss {run.validation[-1].loss:.4f}"
        parts.append(said)
    return "Loss by step of each run. " + "; ".join(parts) + "."


@dataclass(frozen=True)
class FigureRow:
    name: str
    label: str
    cells: list[tuple[str, bool]]  # (the value as words, whether it is the best)


def figure_rows(comparison: comparing.Comparison) -> list[FigureRow]:
    """Each figure some run has, one row, the best value marked where one way is better."""
    names = {name for run in comparison.runs for name, v in run.figures.items() if v is not None}
    rows = []
    for name, _ in figures.in_order(dict.fromkeys(names)):
        values = [run.figures.get(name) for run in comparison.runs]
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


def page_context(comparison: comparing.Comparison) -> dict:
    return {
        "comparison": comparison,
        "runs": comparison.runs,
        "ids": ",".join(str(run.job.pk) for run in comparison.runs),
        "chart": chart(comparison),
        "figure_rows": figure_rows(comparison),
        "differences": [
            (d.field, [config_value(v) for v in d.values]) for d in comparison.differences
        ],
        "succeeded": JobStatus.SUCCEEDED,
        "refresh_seconds": REFRESH_SECONDS,
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
    return render(request, template, page_context(comparison))
