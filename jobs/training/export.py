"""A standalone model from a trained adapter: base + adapter merged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from jobs.vocabulary import SEQUENCE_CLASSIFICATION

from . import loading
from .contract import short_cause
from .files import atomic_folder


def export_merged(adapter_dir: Path, model_source: str, out_dir: Path, *, task: str) -> Path:
    """Merge `adapter_dir` into its float base and save model + tokenizer to `out_dir`.

    The base is loaded unquantised even for QLoRA adapters: merging into
    4-bit weights would round the adapter away. A full fine-tune's "adapter"
    folder already is a whole model and is copied as one. Writes beside
    `out_dir` and renames into place.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    auto_class = (
        AutoModelForSequenceClassification
        if task == SEQUENCE_CLASSIFICATION
        else AutoModelForCausalLM
    )
    with atomic_folder(out_dir) as staging:
        if (adapter_dir / "adapter_config.json").exists():
            from peft import PeftModel

            kwargs = {}
            labels_file = adapter_dir / "tailor_labels.json"
            if labels_file.exists():
                labels = json.loads(labels_file.read_text())
                kwargs = {
                    "num_labels": len(labels),
                    "id2label": dict(enumerate(labels)),
                    "label2id": {label: i for i, label in enumerate(labels)},
                }
            loading.load_tokenizer(model_source)  # same checks and messages as training
            try:
                base = auto_class.from_pretrained(model_source, dtype=torch.float32, **kwargs)
            except (OSError, ValueError) as exc:
                raise loading.model_load_failure(detail=short_cause(exc)) from exc
            merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
            merged.save_pretrained(staging)
        else:
            for item in adapter_dir.iterdir():
                if item.is_file() and item.suffix in {".json", ".safetensors", ".jinja", ".model"}:
                    shutil.copy2(item, staging / item.name)
        tokenizer = loading.load_tokenizer(str(adapter_dir))
        tokenizer.save_pretrained(staging)
        for name in ("tailor_config.json", "tailor_metrics.json", "tailor_labels.json"):
            if (adapter_dir / name).exists():
                shutil.copy2(adapter_dir / name, staging / name)
    return out_dir
