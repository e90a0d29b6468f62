"""What a sweep searches: its parameters, their values or ranges, its budget,
metric, sampler and pruner, read from an API body or the wizard's form into
one checked `SweepPlan`. Plain Python apart from Optuna's distributions;
errors are `jobs.config.ConfigError`, each naming its dotted field
(`sweep.parameters.learning_rate`), as a job's configuration errors do.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from jobs import config as cfg
from jobs.config.checks import FIELD_RULES
from jobs.numbers import NumberError, read_number
from jobs.sweep_models import SweepMetric, SweepPruner, SweepSampler
from jobs.vocabulary import CAUSAL_LM, SEQUENCE_CLASSIFICATION

MAX_PARAMETERS = 3
MAX_VALUES = 20
MAX_BUDGET = 50
MAX_PARALLEL = 4

NOT_A_MAPPING = "must be a mapping: parameters, budget, metric, sampler, pruner."
GRID_NEEDS_VALUES = "grid search tries listed values: give values, not a range."
PRUNING_NEEDS_LOSS = (
    "runs are stopped early on their validation loss: choose val_loss as the metric, or no pruning."
)


@dataclass(frozen=True)
class Parameter:
    """One hyperparameter a sweep may vary: where it lives in a job's
    document, and whether a range of it is searched on a log scale."""

    key: str
    field: str  # the job document's dotted field
    label: str
    whole: bool
    log: bool  # learning rates and ranks span orders of magnitude

    @property
    def words(self) -> str:
        """The label inside a sentence: "learning rate", "LoRA rank"."""
        return self.label if self.label.startswith("LoRA") else self.label.lower()


PARAMETERS = {
    p.key: p
    for p in (
        Parameter("learning_rate", "training.learning_rate", "Learning rate", False, True),
        Parameter("lora_rank", "lora.rank", "LoRA rank", True, True),
        Parameter("epochs", "training.epochs", "Epochs", False, False),
        Parameter("max_seq_length", "training.max_seq_length", "Max sequence length", True, True),
        Parameter("batch_size", "training.batch_size", "Batch size", True, False),
    )
}

# The evaluation's figures exist for one task each (serving/services/evaluations.py).
METRIC_TASKS = {
    SweepMetric.ACCURACY: SEQUENCE_CLASSIFICATION,
    SweepMetric.EXACT_MATCH: CAUSAL_LM,
}


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep: `space` is {key: {"values": [...]} or {"low", "high", "log"}}."""

    space: dict
    budget: int
    metric: str
    sampler: str
    pruner: str
    parallel: int

    @property
    def direction(self) -> str:
        return "minimize" if self.metric == SweepMetric.VAL_LOSS else "maximize"


def _bounds(parameter: Parameter) -> dict:
    rule = FIELD_RULES[parameter.field]
    return {"lowest": rule.lowest, "highest": rule.highest, "lowest_open": rule.lowest_open}


def _number(value, parameter: Parameter, field: str, errors: list) -> int | float | None:
    try:
        return read_number(value, whole=parameter.whole, **_bounds(parameter))
    except NumberError as refused:
        errors.append(cfg.FieldError(field, refused.message))
        return None


def _read_values(parameter: Parameter, values, field: str, errors: list) -> dict | None:
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_VALUES:
        errors.append(cfg.FieldError(field, f"give 1 to {MAX_VALUES} values."))
        return None
    read = [_number(v, parameter, field, errors) for v in values]
    return None if None in read else {"values": sorted(set(read))}


def _read_range(parameter: Parameter, spec: dict, field: str, errors: list) -> dict | None:
    low = _number(spec["low"], parameter, f"{field}.low", errors)
    high = _number(spec["high"], parameter, f"{field}.high", errors)
    if low is None or high is None:
        return None
    if low >= high:
        errors.append(cfg.FieldError(f"{field}.high", "must be more than the low end."))
        return None
    return {"low": low, "high": high, "log": bool(spec.get("log", parameter.log))}


def _read_parameter(parameter: Parameter, spec, sampler: str, errors: list) -> dict | None:
    field = f"sweep.parameters.{parameter.key}"
    if isinstance(spec, dict) and "values" in spec:
        return _read_values(parameter, spec["values"], field, errors)
    if not isinstance(spec, dict) or not {"low", "high"} <= spec.keys():
        errors.append(cfg.FieldError(field, "give a list of values, or a range: low and high."))
    elif sampler == SweepSampler.GRID:
        errors.append(cfg.FieldError(field, GRID_NEEDS_VALUES))
    else:
        return _read_range(parameter, spec, field, errors)
    return None


def _choice(value, choices, field: str, default: str, errors: list) -> str:
    value = default if value in (None, "") else value
    if value not in choices.values:
        errors.append(cfg.FieldError(field, f"must be one of {', '.join(choices.values)}."))
    return value


def read_sweep(spec, *, task: str) -> SweepPlan:
    """The sweep section of a request, checked for a base model of `task`;
    ConfigError naming every bad field (`sweep.budget`, ...)."""
    if not isinstance(spec, dict):
        raise cfg.ConfigError([cfg.FieldError("sweep", NOT_A_MAPPING)])
    errors: list[cfg.FieldError] = []
    sampler = _choice(spec.get("sampler"), SweepSampler, "sweep.sampler", SweepSampler.TPE, errors)
    metric = _choice(spec.get("metric"), SweepMetric, "sweep.metric", SweepMetric.VAL_LOSS, errors)
    pruner = _choice(spec.get("pruner"), SweepPruner, "sweep.pruner", SweepPruner.NONE, errors)
    needed = METRIC_TASKS.get(metric)
    if needed is not None and needed != task:
        other = "accuracy" if task == SEQUENCE_CLASSIFICATION else "exact_match"
        message = f"this base model's evaluation has no {metric}; use {other} or val_loss."
        errors.append(cfg.FieldError("sweep.metric", message))
    if pruner != SweepPruner.NONE and metric != SweepMetric.VAL_LOSS:
        errors.append(cfg.FieldError("sweep.pruner", PRUNING_NEEDS_LOSS))
    parameters = spec.get("parameters")
    space: dict = {}
    if not isinstance(parameters, dict) or not 1 <= len(parameters) <= MAX_PARAMETERS:
        message = f"choose 1 to {MAX_PARAMETERS} of {', '.join(PARAMETERS)}."
        errors.append(cfg.FieldError("sweep.parameters", message))
    else:
        for key, value in parameters.items():
            if key not in PARAMETERS:
                message = f"is not one a sweep can vary; choose from {', '.join(PARAMETERS)}."
                errors.append(cfg.FieldError(f"sweep.parameters.{key}", message))
                continue
            read = _read_parameter(PARAMETERS[key], value, sampler, errors)
            if read is not None:
                space[key] = read
    budget = parallel = 0
    try:
        budget = read_number(spec.get("budget", ""), whole=True, lowest=1, highest=MAX_BUDGET)
    except NumberError as refused:
        errors.append(cfg.FieldError("sweep.budget", refused.message))
    try:
        parallel = read_number(spec.get("parallel", 2), whole=True, lowest=1, highest=MAX_PARALLEL)
    except NumberError as refused:
        errors.append(cfg.FieldError("sweep.parallel", refused.message))
    if errors:
        raise cfg.ConfigError(errors)
    if sampler == SweepSampler.GRID or (sampler == SweepSampler.RANDOM and is_finite(space)):
        budget = min(budget, grid_size(space))  # each combination once
    return SweepPlan(space, budget, metric, sampler, pruner, parallel)


def is_finite(space: dict) -> bool:
    """Whether every parameter is a list of values (no range)."""
    return all("values" in spec for spec in space.values())


def grid_size(space: dict) -> int:
    return math.prod(len(spec["values"]) for spec in space.values())


def grid(space: dict) -> dict:
    """Optuna's GridSampler's search space: {key: [values]}."""
    return {key: list(spec["values"]) for key, spec in space.items()}


def distributions(space: dict) -> dict:
    """Optuna's distributions of `space`, passed to `Study.ask`."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    result = {}
    for key, spec in space.items():
        if "values" in spec:
            result[key] = CategoricalDistribution(spec["values"])
        elif PARAMETERS[key].whole:
            result[key] = IntDistribution(spec["low"], spec["high"], log=spec["log"])
        else:
            result[key] = FloatDistribution(spec["low"], spec["high"], log=spec["log"])
    return result


def apply(document: dict, params: dict) -> dict:
    """A copy of the job document with each parameter's field set to its value."""
    result = {section: dict(value) if isinstance(value, dict) else value
              for section, value in document.items()}  # fmt: skip
    for key, value in params.items():
        section, name = PARAMETERS[key].field.split(".")
        result[section][name] = value
    return result


def describe(params: dict) -> str:
    """ "learning rate 0.0003, LoRA rank 8": a run's values, in words."""
    return ", ".join(f"{PARAMETERS[key].words} {value:g}" for key, value in params.items())


def combinations(space: dict) -> list[dict]:
    """Every combination of a values-only space (what a grid search visits)."""
    keys = list(space)
    return [dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(space[k]["values"] for k in keys))]  # fmt: skip


def parse_form_values(text: str) -> dict | None:
    """The wizard's text for one parameter: "1e-4, 3e-4" (values) or
    "1e-4 .. 1e-3" (a range); None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    if ".." in text:
        low, _, high = text.partition("..")
        return {"low": low.strip(), "high": high.strip()}
    return {"values": [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]}
