"""The model catalog: which base models exist, whether this machine has them,
and what fine-tuning them costs in memory.

Plain lookups only: nothing here imports torch or contacts the hub, so the
web process can list the catalog quickly. Availability is read from disk (the
bundled models' folders, local folders, the Hugging Face cache) and from the
offline switches (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE): a model that needs a
download on a studio that cannot download is not usable, so no job on it is
created only to fail in the worker.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import Http404

from jobs import demo_models
from jobs.config import ModelFacts
from jobs.models import CatalogModel, ModelSource
from jobs.vocabulary import (
    ADAPTERS,
    CAUSAL_LM,
    MODEL_TASK_FOR_DATASET_TASK,
    SEQUENCE_CLASSIFICATION,
    Adapter,
)

GIB = 1024**3

# Popular small instruct models, by Hugging Face id: (slug, name, family,
# parameters, id, context length).
_HF_CAUSAL = [
        (
            "smollm2-135m-instruct",
            "SmolLM2 135M Instruct",
            "SmolLM2",
            134_515_008,
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            8192,
        ),
        (
            "smollm2-360m-instruct",
            "SmolLM2 360M Instruct",
            "SmolLM2",
            361_821_120,
            "HuggingFaceTB/SmolLM2-360M-Instruct",
            8192,
        ),
        (
            "qwen2.5-0.5b-instruct",
            "Qwen2.5 0.5B Instruct",
            "Qwen2.5",
            494_032_768,
            "Qwen/Qwen2.5-0.5B-Instruct",
            32768,
        ),
        (
            "llama-3.2-1b-instruct",
            "Llama 3.2 1B Instruct",
            "Llama 3.2",
            1_235_814_400,
            "meta-llama/Llama-3.2-1B-Instruct",
            131072,
        ),
        (
            "qwen2.5-1.5b-instruct",
            "Qwen2.5 1.5B Instruct",
            "Qwen2.5",
            1_543_714_304,
            "Qwen/Qwen2.5-1.5B-Instruct",
            32768,
        ),
        (
            "smollm2-1.7b-instruct",
            "SmolLM2 1.7B Instruct",
            "SmolLM2",
            1_711_376_384,
            "HuggingFaceTB/SmolLM2-1.7B-Instruct",
            8192,
        ),
        (
            "llama-3.2-3b-instruct",
            "Llama 3.2 3B Instruct",
            "Llama 3.2",
            3_212_749_824,
            "meta-llama/Llama-3.2-3B-Instruct",
            131072,
        ),
        (
            "mistral-7b-instruct-v0.3",
            "Mistral 7B Instruct v0.3",
            "Mistral",
            7_248_023_552,
            "mistralai/Mistral-7B-Instruct-v0.3",
            32768,
        ),
]  # fmt: skip


def _hf_causal_entry(order: int, row: tuple) -> dict:
    slug, name, family, parameters, hf_id, context = row
    return {
        "id": slug,
        "display_name": name,
        "family": family,
        "parameters": parameters,
        "task": CAUSAL_LM,
        "source_kind": ModelSource.HUGGING_FACE,
        "source": hf_id,
        "context_length": context,
        "characters_per_token": 4.0,
        # The QLoRA paper's 2e-4 for LoRA on pretrained models.
        "learning_rate": 2e-4,
        "batch_size": 8,
        "target_modules": [],
        "supports_4bit": True,
        "sort_order": order,
    }


# The entries a new installation starts with (a data migration writes them;
# operators add more in the admin). Parameter counts from the model cards;
# characters per token measured on English text with each tokenizer.
DEFAULT_ENTRIES = [
    {
        "id": demo_models.TINY_NAME,
        "display_name": "Tailor Tiny (demo, 3.6M)",
        "family": "Llama",
        "parameters": 3_572_992,
        "task": CAUSAL_LM,
        "source_kind": ModelSource.BUNDLED,
        "source": demo_models.TINY_NAME,
        "context_length": 512,
        # Its 640-token vocabulary splits most words: 1.6 measured on the
        # routing sample (chat markers counted apart).
        "characters_per_token": 1.6,
        # A model this small, starting from random weights, needs a far larger
        # step than pretrained models: 3e-3 learns the bundled routing task in
        # 75 steps (datasets_app/samples/README.md).
        "learning_rate": 3e-3,
        "batch_size": 16,
        "target_modules": [],
        "supports_4bit": True,
        "description": "Generated on this machine; fine-tunes on a CPU in about a minute.",
        "sort_order": 1,
    },
    {
        "id": demo_models.MINILM_NAME,
        "display_name": "MiniLM L6 (classifier, 22.7M)",
        "family": "BERT",
        "parameters": 22_713_216,
        "task": SEQUENCE_CLASSIFICATION,
        "source_kind": ModelSource.BUNDLED,
        "source": demo_models.MINILM_NAME,
        "context_length": 512,
        "characters_per_token": 4.4,
        "learning_rate": 2e-3,
        "batch_size": 16,
        "target_modules": ["query", "key", "value", "dense"],
        "supports_4bit": False,
        "quantization_note": (
            "bitsandbytes' 4-bit layers fail during training of this encoder on CPU"
        ),
        "description": "A small English sentence encoder with a new classification head.",
        "sort_order": 2,
    },
    *[_hf_causal_entry(order, row) for order, row in enumerate(_HF_CAUSAL, start=10)],
    {
        "id": "distilbert-base-uncased",
        "display_name": "DistilBERT base (classifier, 66M)",
        "family": "BERT",
        "parameters": 66_955_010,
        "task": SEQUENCE_CLASSIFICATION,
        "source_kind": ModelSource.HUGGING_FACE,
        "source": "distilbert/distilbert-base-uncased",
        "context_length": 512,
        "characters_per_token": 4.4,
        "learning_rate": 5e-4,
        "batch_size": 16,
        "target_modules": ["q_lin", "k_lin", "v_lin", "out_lin"],
        "supports_4bit": False,
        "quantization_note": "bitsandbytes' 4-bit layers are not offered for encoders",
        "sort_order": 30,
    },
]


def seed_catalog(model_class=CatalogModel) -> None:
    """Write the default entries that do not exist yet (operators' edits stay)."""
    present = set(model_class.objects.values_list("id", flat=True))
    missing = [model_class(**entry) for entry in DEFAULT_ENTRIES if entry["id"] not in present]
    model_class.objects.bulk_create(missing, ignore_conflicts=True)


# --- where a model is and whether it is here ------------------------------------


def _hf_cache_dirs() -> list[Path]:
    explicit = os.environ.get("HF_HUB_CACHE")
    if explicit:
        return [Path(explicit)]
    home = os.environ.get("HF_HOME")
    base = Path(home) if home else Path.home() / ".cache" / "huggingface"
    return [base / "hub"]


def hf_cached(repo_id: str) -> bool:
    """True when the Hugging Face cache holds a snapshot of `repo_id` with its config."""
    folder = "models--" + repo_id.replace("/", "--")
    for cache in _hf_cache_dirs():
        if any((cache / folder / "snapshots").glob("*/config.json")):
            return True
    return False


def model_source(entry: CatalogModel) -> str:
    """What `from_pretrained` is given: a folder here, or a Hugging Face id."""
    if entry.source_kind == ModelSource.BUNDLED:
        if entry.source == demo_models.TINY_NAME:
            return str(demo_models.tiny_path())
        if entry.source == demo_models.MINILM_NAME:
            path = demo_models.minilm_path()
            return str(path) if path else ""
        return ""
    return entry.source


# huggingface_hub's and transformers' own switches, read as they read them:
# with either set, a worker loads only what the cache holds.
_OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE_WORDS = {"1", "ON", "YES", "TRUE"}


def offline_switch() -> str | None:
    """The variable that keeps this studio from downloading models, if one is set."""
    for name in _OFFLINE_SWITCHES:
        if os.environ.get(name, "").strip().upper() in _TRUE_WORDS:
            return name
    return None


# The words of `Availability.code`, as the API documents them.
AVAILABILITY_CODES = ("ready", "download", "offline", "missing")


@dataclass(frozen=True)
class Availability:
    code: str  # one of AVAILABILITY_CODES
    label: str
    detail: str

    @property
    def usable(self) -> bool:
        """Whether a job on this model can run here (a download it cannot make: no)."""
        return self.code in ("ready", "download")


def availability(entry: CatalogModel) -> Availability:
    if entry.source_kind == ModelSource.BUNDLED:
        source = model_source(entry)
        if source and (Path(source) / "config.json").exists():
            return Availability("ready", "On this machine", "Bundled with Tailor.")
        return Availability(
            "missing",
            "Not generated",
            "Run `manage.py make_demo_models` (make run does it) to create it.",
        )
    if entry.source_kind == ModelSource.LOCAL:
        if (Path(entry.source) / "config.json").exists():
            return Availability("ready", "On this machine", f"Folder {entry.source}.")
        return Availability("missing", "Folder missing", f"{entry.source} has no config.json.")
    return _hub_availability(entry)


def _hub_availability(entry: CatalogModel) -> Availability:
    """A Hugging Face model: in the cache, downloaded on first use, or out of reach."""
    if hf_cached(entry.source):
        return Availability("ready", "In the Hugging Face cache", entry.source)
    size = weight_bytes(entry.parameters)
    switch = offline_switch()
    if switch is not None:
        return Availability(
            "offline",
            "Needs a download: offline",
            f"{entry.display_name} needs a download of {entry.source} (about "
            f"{size / GIB:.1f} GiB), and this studio cannot download ({switch} is set). "
            "Choose a model on this machine, or ask an operator to put it in the "
            "Hugging Face cache.",
        )
    return Availability(
        "download",
        "Downloads on first use",
        f"The training worker downloads {entry.source} (about {size / GIB:.1f} GiB) "
        "from the Hugging Face Hub when a job starts; it needs network access.",
    )


def weight_bytes(parameters: int) -> int:
    """Size of the published weights (16-bit)."""
    return parameters * 2


# --- memory -----------------------------------------------------------------------

# Bytes per parameter of the base while training: nf4 with double quantisation
# is ~0.53 B; 16-bit weights 2 B (4 B on a CPU, which trains in float32); a
# full fine-tune keeps fp32 weights, gradients and two Adam moments, 16 B.
# LoRA's trainable share (~1 % at r 16 on all linear layers) costs 16 B each.
_BASE_BYTES = {Adapter.QLORA: 0.53, Adapter.LORA: 2.0, Adapter.FULL: 16.0}
_ADAPTER_SHARE = 0.01
_FRAMEWORK_BYTES = 0.4 * GIB  # CUDA context / torch runtime


def memory_estimate(
    parameters: int,
    method: str,
    *,
    batch_size: int = 8,
    max_seq_length: int = 512,
    hidden_size: int | None = None,
) -> int:
    """Approximate peak memory of training, in bytes (weights, optimiser, activations)."""
    weights = parameters * _BASE_BYTES[method]
    adapter = 0 if method == Adapter.FULL else parameters * _ADAPTER_SHARE * 16
    # Activations with gradient checkpointing: ~ tokens × hidden × layers ×
    # a small constant; without knowing the architecture, scale with the
    # square root of the parameter count (hidden ≈ sqrt(P / 12 / layers)).
    hidden = hidden_size or max(256, int((parameters / 200) ** 0.5))
    activations = batch_size * max_seq_length * hidden * 2 * 34
    return int(weights + adapter + activations + _FRAMEWORK_BYTES)


def memory_by_method(entry: CatalogModel) -> dict[str, int]:
    methods = [a for a in ADAPTERS if entry.supports_4bit or a != Adapter.QLORA]
    return {
        method: memory_estimate(entry.parameters, method, batch_size=entry.batch_size)
        for method in methods
    }


# --- lookups ------------------------------------------------------------------------


def list_models(*, task: str | None = None):
    models = CatalogModel.objects.filter(enabled=True)
    return models.filter(task=task) if task else models


def models_for_dataset_task(dataset_task: str):
    return list_models(task=MODEL_TASK_FOR_DATASET_TASK.get(dataset_task, "none"))


def get_model(model_id: str) -> CatalogModel:
    try:
        return CatalogModel.objects.get(id=model_id, enabled=True)
    except CatalogModel.DoesNotExist:
        raise Http404("No such model in the catalog.") from None


def model_facts(entry: CatalogModel) -> ModelFacts:
    return ModelFacts(
        task=entry.task,
        parameters=entry.parameters,
        context_length=entry.context_length,
        characters_per_token=entry.characters_per_token,
        learning_rate=entry.learning_rate,
        batch_size=entry.batch_size,
        target_modules=tuple(entry.lora_targets),
    )


def full_finetune_limit() -> int:
    return settings.TAILOR_FULL_FINETUNE_MAX_PARAMETERS
