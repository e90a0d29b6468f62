"""A merge: adapters of one base combined into one with PEFT's weighted-adapter
methods (`add_weighted_adapter`), written where training writes an adapter.

Nothing trains. The base is loaded un-quantised (float32 on a CPU, bfloat16
on a GPU that computes it, as `loading.compute_dtype_name` says) even for
QLoRA sources: the merged adapter is still an adapter for that base, served
on the 4-bit base as its sources were.

Combinations, as PEFT 0.21 defines them (all keep the rank of the sources):
`linear` adds each adapter's A and B matrices times the square root of its
weight and scale; `ties` keeps each weight's `density` share of largest
values and the sign most of the adapters agree on, and averages those;
`dare_linear` / `dare_ties` drop a random `1 - density` share of each
adapter's values, rescale the rest, then add (linear) or elect signs (TIES).
PEFT requires one rank for all four. Sources of different ranks go through
the SVD variant of `ties` and the DARE methods (`ties_svd`, …: each
adapter's product B·A combined, then factored again at the largest rank);
`linear` has none that is still a weighted sum of the matrices, so it
refuses them. Classifiers' adapters carry a trained label head each
(PEFT's modules_to_save), which PEFT cannot combine: they are refused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from . import loading
from .contract import RunPaths, TrainingFailure, TrainingResult, short_cause
from .files import atomic_folder

# What the merged adapter is called inside the PeftModel: PEFT saves the
# adapter named "default" at the folder's top, the layout training writes.
MERGED = "default"
# Weights the combinations apply when none are given: linear methods add, so
# equal weights are 1/n (an average); TIES methods already average the
# values they keep (a disjoint mean), so equal weights are 1 each.
AVERAGING = ("linear", "dare_linear")
NEEDS_DENSITY = ("ties", "dare_linear", "dare_ties")


def merge_weights(combination: str, weights: list[float], count: int) -> list[float]:
    """The weight of each of `count` adapters: `weights`, or equal ones."""
    if weights:
        return [float(w) for w in weights]
    return [1.0 / count if combination in AVERAGING else 1.0] * count


def peft_combination(combination: str, ranks: list[int]) -> str:
    """PEFT's combination_type for `combination` over adapters of `ranks`."""
    if len(set(ranks)) == 1:
        return combination
    if combination == "linear":
        raise TrainingFailure(
            "training",
            f"A linear merge needs adapters of one rank; these have ranks "
            f"{', '.join(str(r) for r in ranks)}. Choose TIES or DARE, which merge "
            "adapters of different ranks, or merge adapters trained with one rank.",
        )
    return f"{combination}_svd"


def run_merge(config, paths: RunPaths, *, on_event, may_write=None) -> TrainingResult:
    """Merge the adapters of `paths.start_adapters` (in `config.merge.sources`'
    order) into `paths.adapter_dir`, replacing any adapter there in one rename.

    Sends a `started` event and a `log` line per adapter loaded; calls
    `may_write` (when given) before the adapter is written. Raises
    TrainingFailure for errors an analyst can act on.
    """
    import torch

    sources = [Path(folder) for folder in paths.start_adapters]
    merge = config.merge
    if len(sources) < 2:
        raise TrainingFailure(
            "training", "A merge needs the adapters of at least two succeeded jobs; it found "
            f"{len(sources)}. Create the merge again with two or more jobs.",
        )  # fmt: skip
    started = time.monotonic()
    total = len(sources) + 1  # one step per adapter loaded, one for the merge
    on_event({"kind": "started", "total_steps": total, "resumed_from_step": 0})
    ranks = [_adapter_config(folder, number)["r"] for number, folder in enumerate(sources, 1)]
    combination = peft_combination(merge.combination, ranks)
    weights = merge_weights(merge.combination, list(merge.weights), len(sources))
    try:
        model = _load_sources(paths.model_source, sources, on_event)
        names = [f"source-{number}" for number in range(1, len(sources) + 1)]
        # DARE drops values at random: a seed makes a merge repeatable.
        torch.manual_seed(config.training.seed)
        model.add_weighted_adapter(
            names, weights, adapter_name=MERGED, combination_type=combination,
            density=merge.density if merge.combination in NEEDS_DENSITY else None,
        )  # fmt: skip
        model.set_adapter(MERGED)
        for name in names:
            model.delete_adapter(name)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        raise TrainingFailure(
            "out_of_memory",
            "The merge ran out of memory loading the un-quantised base model. Run it on a "
            "worker with more memory, or merge adapters of a smaller base.",
        ) from exc
    svd_note = f" (PEFT's {combination}: the sources' ranks differ)" if combination != (
        merge.combination
    ) else ""  # fmt: skip
    on_event({"kind": "log", "message": f"Merged {len(sources)} adapters with "
              f"{merge.combination}{svd_note}, weights {_listed(weights)}"})  # fmt: skip
    metrics = {
        "sources": len(sources),
        "combination": merge.combination,
        "peft_combination": combination,
        "weights": weights,
        "density": merge.density if merge.combination in NEEDS_DENSITY else None,
        "rank": max(ranks),
        "runtime_seconds": round(time.monotonic() - started, 2),
        "steps": total,
        "trained_tokens": 0,
    }
    if may_write is not None and not may_write():
        # The run lost its lease: the adapter is not its to write.
        return TrainingResult(stopped=True, final_step=total - 1, total_steps=total,
                              trained_tokens=0, metrics=metrics, adapter_dir=None)  # fmt: skip
    with atomic_folder(paths.adapter_dir) as staging:
        model.save_pretrained(str(staging))
        loading.load_tokenizer(str(sources[0])).save_pretrained(str(staging))
        (staging / "tailor_config.json").write_text(json.dumps(config.to_document(), indent=2))
        (staging / "tailor_metrics.json").write_text(json.dumps(metrics, indent=2))
    on_event({"kind": "log", "message": "Saved the merged adapter"})
    return TrainingResult(
        stopped=False, final_step=total, total_steps=total, trained_tokens=0, metrics=metrics,
        adapter_dir=paths.adapter_dir,
    )  # fmt: skip


def _listed(numbers: list[float]) -> str:
    return ", ".join(f"{n:g}" for n in numbers)


def _adapter_config(folder: Path, number: int) -> dict:
    """The PEFT config of the `number`th source, checked to be a mergeable one."""
    try:
        found = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise TrainingFailure(
            "model_load",
            f"Source {number} has no readable adapter: was its job's adapter deleted? "
            "Merge it again with jobs that still have theirs.",
            detail=f"{folder}: {short_cause(exc)}",
        ) from exc
    if found.get("task_type") == "SEQ_CLS" or (folder / "tailor_labels.json").exists():
        raise TrainingFailure(
            "training",
            "Adapters of classifiers cannot be merged: each carries its own trained label "
            "head, which PEFT's weighted merge cannot combine. Merge text generation "
            "adapters instead.",
        )
    return found


def _load_sources(model_source: str, sources: list[Path], on_event):
    """The un-quantised base with each source's adapter loaded as source-<n>."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    loading.load_tokenizer(model_source)  # the checks and messages training has
    kwargs = {"dtype": getattr(torch, loading.compute_dtype_name())}
    if torch.cuda.is_available():
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    try:
        base = AutoModelForCausalLM.from_pretrained(model_source, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise loading.model_load_failure(detail=short_cause(exc)) from exc
    on_event({"kind": "log", "message": "Loaded the base model un-quantised"})
    model = None
    for number, folder in enumerate(sources, 1):
        name = f"source-{number}"
        try:
            if model is None:
                model = PeftModel.from_pretrained(base, str(folder), adapter_name=name)
            else:
                model.load_adapter(str(folder), adapter_name=name)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise TrainingFailure(
                "model_load",
                f"The adapter of source {number} does not fit the base model: was it "
                "trained on another base? Merge adapters of one base.",
                detail=f"{folder}: {short_cause(exc)}",
            ) from exc
        on_event({"kind": "log", "message": f"Loaded adapter {number} of {len(sources)}"})
    return model
