"""Loading the base model and tokenizer for an adapter kind (qlora, lora, full).

Any loading error becomes TrainingFailure("model_load", ...): a missing
folder, a bad Hugging Face id, a broken config, a model too large to fit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from jobs.vocabulary import CAUSAL_LM, SEQUENCE_CLASSIFICATION, Adapter

from .contract import TrainingFailure, short_cause


def compute_dtype_name() -> str:
    """bfloat16 on a GPU that computes it natively, else float32.

    A CPU trains in float32 even where it has bfloat16 instructions: on a
    CPU without them bfloat16 is emulated and about ten times slower, and on
    one with them (this AMD EPYC) MiniLM's Quick run sometimes diverged in
    bfloat16 (a loss spike, then a head that answers one label: accuracy
    0.50 and 0.68 in two CI runs; 0.96-0.98 when it did not), which float32
    never did. Speed on a CPU is not worth a run that fails at random.
    """
    import torch

    if torch.cuda.is_available():
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "float32"


def model_load_failure(cause: str = "", *, detail: str = "") -> TrainingFailure:
    """`cause` is a plain reason of our own; `detail` (the library's error, a
    folder of the server) is for operators only."""
    if cause:
        return TrainingFailure(
            "model_load", f"The base model could not be loaded: {cause}.", detail=detail
        )
    return TrainingFailure(
        "model_load",
        "The base model could not be loaded on the worker; an operator can see why "
        "on the job's page.",
        detail=detail,
    )


def _check_local(source: str) -> None:
    # A path that is not there would otherwise be tried as a Hub id and fail
    # with a long message about repository names.
    looks_local = os.path.isabs(source) or source.startswith((".", "~"))
    if looks_local and not Path(source).expanduser().is_dir():
        raise model_load_failure(detail=f"there is no model folder at {source}")


def load_tokenizer(source: str):
    from transformers import AutoTokenizer

    _check_local(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError, KeyError) as exc:
        raise model_load_failure(detail=short_cause(exc)) from exc
    if tokenizer.pad_token is None:
        # Llama-style tokenizers ship without one; padding is masked anyway.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(compute_dtype):
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def load_model(source: str, *, task: str, method: str, labels: list[str] | None = None):
    """The base model, ready for PEFT (qlora: 4-bit and prepared for k-bit training)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    _check_local(source)
    cuda = torch.cuda.is_available()
    compute_dtype = getattr(torch, compute_dtype_name())
    kwargs = {}
    if task == SEQUENCE_CLASSIFICATION:
        if method == Adapter.QLORA and not cuda:
            # FINDINGS.md: bitsandbytes' CPU 4-bit path fails for the encoder.
            raise model_load_failure(
                "4-bit (QLoRA) loading of classification models does not work on a CPU; "
                "choose LoRA",
            )
        kwargs.update(
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
        )
        auto_class = AutoModelForSequenceClassification
    else:
        auto_class = AutoModelForCausalLM
    if task == CAUSAL_LM and flash_attention_available():
        kwargs["attn_implementation"] = "flash_attention_2"
    if method == Adapter.QLORA:
        kwargs["quantization_config"] = quantization_config(compute_dtype)
        if task == SEQUENCE_CLASSIFICATION:
            kwargs["quantization_config"].llm_int8_skip_modules = ["classifier", "score", "pooler"]
        if cuda:
            kwargs["device_map"] = {"": torch.cuda.current_device()}
    elif method == Adapter.LORA:
        # The frozen base in the compute dtype; the adapter trains in float32 (PEFT upcasts it).
        kwargs["dtype"] = compute_dtype
    else:
        # Full fine-tunes keep float32 master weights; bf16 is autocast where supported.
        kwargs["dtype"] = torch.float32
    try:
        model = auto_class.from_pretrained(source, **kwargs)
    except (torch.OutOfMemoryError, MemoryError):
        raise
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
        raise model_load_failure(detail=short_cause(exc)) from exc
    if method == Adapter.QLORA:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=use_gradient_checkpointing()
        )
    return model


def flash_attention_available() -> bool:
    """FlashAttention 2 on a CUDA GPU: what packing without cross-row attention needs."""
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None


def packing_strategy() -> str:
    """How rows are packed into sequences.

    "bfd" keeps rows apart (no attention across them) by flattening a batch
    into one padding-free sequence, which only FlashAttention runs at full
    speed; elsewhere the flattened batch costs attention over every token of
    it (measured on this CPU: packed no faster than padded). "wrapped" packs
    rows end to end into dense full-length sequences, the classic recipe.
    """
    return "bfd" if flash_attention_available() else "wrapped"


def use_gradient_checkpointing() -> bool:
    """On a GPU memory is what runs out; on a CPU the models are small and time is what counts."""
    import torch

    return torch.cuda.is_available()


def lora_config(config, *, task: str):
    from peft import LoraConfig

    targets = list(config.lora.target_modules)
    return LoraConfig(
        r=config.lora.rank,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules="all-linear" if targets == ["all-linear"] else targets,
        bias="none",
        task_type="SEQ_CLS" if task == SEQUENCE_CLASSIFICATION else "CAUSAL_LM",
    )


def trainable_in_float32(model) -> None:
    """Cast the trained weights to float32 (bfloat16 autocast still computes).

    SFTTrainer casts a 4-bit model's adapter to bfloat16 (the QLoRA paper's
    choice); without native bf16 that is ~10x slower here, so it is cast back.
    A classifier's new head (PEFT's modules_to_save) is a copy of the base's
    head in the base's dtype: trained in bfloat16 its small updates round
    away (MiniLM Quick: 0.68 accuracy instead of 0.95), so it is always cast.
    """
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.bfloat16, torch.float16):
            param.data = param.data.float()


# --- continuing from an earlier job's adapter --------------------------------------


def adapter_setup(model, config, paths, *, task: str, on_event):
    """`(model, peft_config)` for a trainer: the base with the adapter the run
    continues from loaded trainable (`paths.start_adapters`, one folder) and no
    new LoRA, or the base as it is with a fresh LoRA's config (None for a full
    fine-tune). The continued adapter keeps its own rank, alpha and targets."""
    if not paths.start_adapters:
        return model, (
            None if config.model.method == Adapter.FULL else lora_config(config, task=task)
        )
    if len(paths.start_adapters) > 1 or config.model.method == Adapter.FULL:
        raise TrainingFailure(
            "model_load",
            "A training run continues from one adapter of the same base with LoRA or QLoRA; "
            "start this job from a single succeeded job.",
        )
    folder = Path(paths.start_adapters[0])
    return load_start_adapter(model, folder, config, task=task, on_event=on_event), None


def start_adapter_name(folder: Path) -> str:
    """How messages name the adapter a run continues from: its job's name, or its folder."""
    try:
        name = json.loads((folder / "tailor_config.json").read_text()).get("name")
    except (OSError, ValueError, AttributeError):
        name = None
    if isinstance(name, str) and name.strip():
        return name.strip()
    return folder.parent.name if folder.name == "adapter" else folder.name


def start_adapter_labels(paths) -> list[str] | None:
    """The labels of the classifier adapter a run continues from (None without one)."""
    if len(paths.start_adapters) != 1:
        return None
    try:
        labels = json.loads((Path(paths.start_adapters[0]) / "tailor_labels.json").read_text())
    except (OSError, ValueError):
        return None
    return labels if isinstance(labels, list) else None


def load_start_adapter(model, folder: Path, config, *, task: str, on_event):
    """`model` wrapped in a PeftModel holding the adapter at `folder`, trainable.

    Refuses (TrainingFailure "model_load") an adapter that is missing, was
    trained for the other model task, or on another base model.
    """
    import torch
    from peft import PeftModel

    name = start_adapter_name(folder)
    try:
        adapter = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise TrainingFailure(
            "model_load",
            f"The adapter of “{name}”, which this job continues from, is missing or "
            "unreadable on the worker; an operator can see why on the job's page.",
            detail=f"{folder}: {short_cause(exc)}",
        ) from exc
    wanted = "SEQ_CLS" if task == SEQUENCE_CLASSIFICATION else "CAUSAL_LM"
    if adapter.get("task_type") != wanted:
        trained_for = "text classification" if wanted == "CAUSAL_LM" else "text generation"
        raise TrainingFailure(
            "model_load",
            f"The adapter of “{name}” was trained for {trained_for}, so this job cannot "
            "continue from it; start from a job of the same task.",
        )
    parent_base = _trained_base(folder)
    if parent_base and config.model.base_model and parent_base != config.model.base_model:
        raise TrainingFailure(
            "model_load",
            f"The adapter of “{name}” was trained on {parent_base}, not on "
            f"{config.model.base_model}: an adapter trains on only with its own base.",
        )
    try:
        model = PeftModel.from_pretrained(model, str(folder), is_trainable=True)
    except (torch.OutOfMemoryError, MemoryError):
        raise
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        # Weights of another shape: an adapter of a different base after all.
        raise TrainingFailure(
            "model_load",
            f"The adapter of “{name}” does not fit this base model: an adapter trains on "
            "only with its own base.",
            detail=short_cause(exc),
        ) from exc
    on_event({"kind": "log", "message": f"Continuing from the adapter of {name}"})
    return model


def _trained_base(folder: Path) -> str | None:
    try:
        document = json.loads((folder / "tailor_config.json").read_text())
        return document["model"]["base_model"] or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def restore_start_weights(model, paths) -> None:
    """Load the continued adapter's weights again into the trained adapter.

    TRL casts a 4-bit model's adapter to bfloat16 and `trainable_in_float32`
    casts it back, which rounds a continued adapter's weights: the run would
    start near its parent instead of at it. Call after that cast back.
    """
    if len(paths.start_adapters) != 1:
        return
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = Path(paths.start_adapters[0]) / "adapter_model.safetensors"
    if weights.exists():
        set_peft_model_state_dict(model, load_file(str(weights)), adapter_name="default")
