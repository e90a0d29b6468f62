"""How a job's or an evaluation's figures read: one table, metric name → label and kind.

The training loop (`jobs/training/loop.py`) and the evaluation engine
(`serving/engine/evaluate.py`) store figures under short names
(`trained_tokens`, `exact_match`); a page shows each as a label and a value
made here, so the Finished card and the evaluation card say the same thing:
"Trained tokens 54,692", "Runtime 4 min 54 s", "Exact match 90.0 %".

Kinds: loss (4 decimals), score (2 decimals, perplexity), count (a whole
number, thousands separated), duration (seconds, as jobs' `human_duration`
words them), rate (a share of 1, shown as a percentage), speed (tokens a
second, whole), money (an amount in the studio's currency, as usage's
prices write it). A name not in the table reads as its words, capitalised; its
value is a count when whole and 4 decimals otherwise. No value (None, or a
template's missing one) reads "—"; text, nan and inf read as stored.
"""

from __future__ import annotations

import math
from numbers import Real

from jobs.wizard import human_duration
from usage.services.prices import money

NO_VALUE = "—"

# name -> (label, kind)
FIGURES = {
    # --- a training run (jobs/training/loop.py `_metrics`) ----------------------------
    "train_loss": ("Train loss", "loss"),
    "mean_train_loss": ("Mean train loss", "loss"),
    "val_loss": ("Validation loss", "loss"),
    "best_val_loss": ("Best validation loss", "loss"),
    "runtime_seconds": ("Runtime", "duration"),
    "steps": ("Steps", "count"),
    "trained_tokens": ("Trained tokens", "count"),
    "tokens_per_second": ("Speed", "speed"),
    # --- what a run spent (usage's ledger of device time) -----------------------------
    "device_seconds": ("Device time", "duration"),
    "cost": ("Cost", "money"),
    # --- an evaluation (serving/engine/evaluate.py); accuracy is also a run's --------
    "accuracy": ("Accuracy", "rate"),
    "macro_f1": ("Macro-F1", "rate"),
    "exact_match": ("Exact match", "rate"),
    "rouge_l": ("ROUGE-L", "rate"),
    "perplexity": ("Perplexity", "score"),
    # --- preference tuning (DPO, KTO): a run's and its evaluation's ----------------------
    "preference_accuracy": ("Preference accuracy", "rate"),
    "mean_margin": ("Mean margin", "score"),
    "reward_margin": ("Reward margin", "score"),
    "rows": ("Rows", "count"),
}


def in_order(metrics: dict) -> list[tuple[str, object]]:
    """`metrics`' (name, value) pairs in FIGURES' order, names it does not know
    last by name: a stored JSON document keeps no key order on PostgreSQL
    (jsonb), and a card must read the same on every database."""
    known = list(FIGURES)

    def place(item) -> tuple[int, str]:
        name = item[0]
        return (known.index(name), "") if name in FIGURES else (len(known), name)

    return sorted(metrics.items(), key=place)


def label(name: str) -> str:
    """The words a page shows above the figure `name`."""
    known = FIGURES.get(name)
    if known:
        return known[0]
    return str(name).replace("_", " ").strip().capitalize()


def kind(name: str) -> str | None:
    known = FIGURES.get(name)
    return known[1] if known else None


def _number(value) -> float | None:
    # bool is an int to Python, but True is no figure.
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# kind -> how a finite number of that kind reads.
FORMATS = {
    "loss": lambda number: f"{number:.4f}",
    "score": lambda number: f"{number:,.2f}",
    "count": lambda number: f"{round(number):,}",
    "duration": human_duration,
    "rate": lambda number: f"{number * 100:.1f} %",
    "speed": lambda number: f"{round(number):,} tokens/s",
    "money": money,
}


def _unknown(number: float) -> str:
    return f"{round(number):,}" if number.is_integer() else f"{number:.4f}"


def value(name: str, figure) -> str:
    """`figure`, the value of `name`, as a page shows it."""
    # "": what a template passes for a figure the results do not hold.
    if figure is None or figure == "":
        return NO_VALUE
    number = _number(figure)
    if number is None:
        # A string, or nan/inf: shown as stored rather than made up.
        return str(figure)
    return FORMATS.get(kind(name), _unknown)(number)


def change(name: str, difference) -> str:
    """A fine-tune's figure less its base's, signed: a rate's in percentage points."""
    number = _number(difference)
    if number is None:
        return NO_VALUE if difference in (None, "") else str(difference)
    match kind(name):
        case "rate":
            return f"{number * 100:+.1f} pts"
        case "score":
            return f"{number:+,.2f}"
        case "count" | "speed":
            return f"{round(number):+,}"
    return f"{number:+.4f}"
