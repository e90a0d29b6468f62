"""Base models loaded once per process, with adapters attached to them by name.

A `ModelSpec` is the key: the same source loaded in 4-bit and in full
precision are two entries. Adapters attach to an entry's model with PEFT's
`load_adapter`, so a fine-tune costs its adapter's few megabytes, not another
copy of the base. Entries are evicted least recently used first when a new
one would not fit the memory budget.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.vocabulary import CAUSAL_LM, MODEL_TASKS, SEQUENCE_CLASSIFICATION
from serving.errors import ServingFailure, detail_of, failure

logger = logging.getLogger(__name__)

BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed batch
# An nf4 weight takes half a byte plus its share of the quantisation
# constants; embeddings and norms stay in full precision. Weight files of
# float32 or bfloat16 shrink by about this much when loaded in 4-bit.
FOUR_BIT_SHRINK = 3.5
WEIGHT_FILES = ("model*.safetensors", "pytorch_model*.bin")
# End-of-turn markers of common chat templates; a template that writes one
# of these after a turn means generation stops there.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>")


@dataclass(frozen=True)
class ModelSpec:
    """One base model as loaded in memory: the pool's key."""

    source: str  # a Hugging Face id or a local folder (a full fine-tune's output folder)
    task: str  # "causal-lm" | "sequence-classification"
    quantized: bool = False  # 4-bit nf4, as QLoRA jobs train
    labels: tuple[str, ...] = ()  # classification: the head's labels, in output order


@dataclass(frozen=True)
class AdapterSpec:
    name: str  # the caller's key (a valid PEFT adapter name, e.g. "ft_<32 hex>")
    path: str  # a PEFT adapter folder


@dataclass(frozen=True)
class PaneSpec:
    model: ModelSpec
    adapter: AdapterSpec | None = None  # None: the base, adapters disabled


@dataclass(eq=False)
class AttachedAdapter:
    path: str
    bytes: int


@dataclass(eq=False)
class LoadedModel:
    """A base model in memory, wrapped in a PeftModel once an adapter is attached."""

    spec: ModelSpec
    model: Any
    tokenizer: Any
    base_bytes: int
    labels: tuple[str, ...]  # classification: the head's labels, in output order
    stop_token_ids: list[int]  # causal: eos and the chat template's end-of-turn token
    max_positions: int | None
    adapters: OrderedDict[str, AttachedAdapter] = field(default_factory=OrderedDict)
    last_used: float = 0.0  # time.time(), for display

    @property
    def has_adapters_support(self) -> bool:
        """Whether the model is a PeftModel (adapter_names and disable_adapter work)."""
        from peft import PeftModel

        return isinstance(self.model, PeftModel)

    @property
    def bytes(self) -> int:
        return self.base_bytes + sum(adapter.bytes for adapter in self.adapters.values())

    def device(self):
        return next(self.model.parameters()).device


class ModelPool:
    """Base models kept in memory within a budget, least recently used evicted first.

    Not meant for concurrent use without `lock`: the engine's functions hold
    it while they use a model, so that another thread cannot evict it
    meanwhile.
    """

    def __init__(self, memory_budget_bytes: int, *, max_adapters: int = 32):
        self.memory_budget_bytes = memory_budget_bytes
        self.max_adapters = max_adapters
        self.loads = 0  # bases loaded so far (adding an adapter does not load one)
        self.lock = threading.RLock()
        self._models: OrderedDict[ModelSpec, LoadedModel] = OrderedDict()

    # --- what the engine calls --------------------------------------------------------

    def prepare(
        self, spec: ModelSpec, adapters: list[AdapterSpec]
    ) -> tuple[LoadedModel, dict[str, ServingFailure]]:
        """The loaded model with `adapters` attached, and the failure of each adapter that
        could not be attached.

        Raises ServingFailure("model_load" or "out_of_memory") when the base
        itself cannot be loaded. Call with `lock` held.
        """
        failures: dict[str, ServingFailure] = {}
        wanted = {adapter.name for adapter in adapters}
        while True:
            loaded = self._get_or_load(spec)
            broken = False
            for adapter in adapters:
                if adapter.name in failures:
                    continue
                try:
                    self._attach(loaded, adapter, keep=wanted)
                except ServingFailure as refused:
                    failures[adapter.name] = refused
                    if not self._is_clean(loaded):
                        broken = True
                        break
            if not broken:
                break
            # A failed first adapter can leave LoRA layers in the base: load it again.
            logger.warning("Reloading %s after a failed adapter load", spec.source)
            self._evict(spec)
        self._make_room(0, keep=spec)
        return loaded, failures

    def stats(self) -> list[dict]:
        """What is in memory, least recently used first."""
        return [
            {
                "source": loaded.spec.source,
                "task": loaded.spec.task,
                "quantized": loaded.spec.quantized,
                "bytes": loaded.bytes,
                "adapters": list(loaded.adapters),
                "last_used": loaded.last_used,
            }
            for loaded in list(self._models.values())
        ]

    def evict_all(self) -> None:
        with self.lock:
            for spec in list(self._models):
                self._evict(spec)

    # --- loading and evicting -----------------------------------------------------------

    def _get_or_load(self, spec: ModelSpec) -> LoadedModel:
        loaded = self._models.get(spec)
        if loaded is None:
            self._make_room(estimate_bytes(spec), keep=None)
            loaded = load_model(spec)
            self.loads += 1
            self._models[spec] = loaded
        self._models.move_to_end(spec)
        loaded.last_used = time.time()
        return loaded

    def _make_room(self, incoming: int, *, keep: ModelSpec | None) -> None:
        """Evict least recently used models until resident + incoming fits the budget.

        A model larger than the whole budget is still loaded, alone.
        """
        while True:
            resident = sum(loaded.bytes for loaded in self._models.values())
            if resident + incoming <= self.memory_budget_bytes:
                return
            victims = [spec for spec in self._models if spec != keep]
            if not victims:
                return
            self._evict(victims[0])

    def _evict(self, spec: ModelSpec) -> None:
        loaded = self._models.pop(spec, None)
        if loaded is None:
            return
        logger.info("Evicting %s (%s bytes)", spec.source, loaded.bytes)
        # Callers may still hold the LoadedModel: drop what it points to.
        loaded.model = None
        loaded.tokenizer = None
        free_memory()

    # --- adapters -----------------------------------------------------------------------

    def _attach(self, loaded: LoadedModel, adapter: AdapterSpec, *, keep: set[str]) -> None:
        attached = loaded.adapters.get(adapter.name)
        if attached is not None and attached.path == adapter.path:
            loaded.adapters.move_to_end(adapter.name)
            return
        if attached is not None:
            # The same name for another folder (a job trained again): load it afresh.
            self._detach(loaded, adapter.name)
        folder = Path(adapter.path)
        if not (folder / "adapter_config.json").is_file():
            raise failure(
                "model_load", "adapter_missing", detail=f"there is no adapter at {adapter.path}"
            )
        while len(loaded.adapters) >= self.max_adapters:
            idle = [name for name in loaded.adapters if name not in keep]
            if not idle:
                break
            self._detach(loaded, idle[0])
        try:
            with quiet_loading():
                if loaded.has_adapters_support:
                    loaded.model.load_adapter(str(folder), adapter_name=adapter.name)
                else:
                    from peft import PeftModel

                    loaded.model = PeftModel.from_pretrained(
                        loaded.model, str(folder), adapter_name=adapter.name
                    )
        except Exception as exc:
            # PEFT raises whatever its readers raise (ValueError, OSError,
            # RuntimeError for a size mismatch, SafetensorError, ...).
            logger.warning("Adapter %s at %s failed to load", adapter.name, folder, exc_info=True)
            self._forget_partial_adapter(loaded, adapter.name)
            raise failure("model_load", "adapter_unreadable", detail=detail_of(exc)) from exc
        loaded.model.eval()
        loaded.adapters[adapter.name] = AttachedAdapter(str(folder), adapter_file_bytes(folder))

    def _detach(self, loaded: LoadedModel, name: str) -> None:
        loaded.adapters.pop(name, None)
        if loaded.has_adapters_support and name in loaded.model.peft_config:
            loaded.model.delete_adapter(name)

    @staticmethod
    def _forget_partial_adapter(loaded: LoadedModel, name: str) -> None:
        if loaded.has_adapters_support and name in loaded.model.peft_config:
            with contextlib.suppress(Exception):
                loaded.model.delete_adapter(name)

    @staticmethod
    def _is_clean(loaded: LoadedModel) -> bool:
        """False when the base holds LoRA layers that no attached adapter accounts for."""
        if loaded.has_adapters_support:
            return True
        from peft.tuners.tuners_utils import BaseTunerLayer

        # A failed PeftModel.from_pretrained can leave injected layers and a
        # peft_config attribute behind in the base model.
        return not hasattr(loaded.model, "peft_config") and not any(
            isinstance(module, BaseTunerLayer) for module in loaded.model.modules()
        )


# --- loading ------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_loading():
    """No progress bars or load reports: a worker's log would fill with them."""
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


def load_model(spec: ModelSpec) -> LoadedModel:
    """Load the base model and tokenizer of `spec` for inference."""
    import torch

    if spec.task not in MODEL_TASKS:
        raise ValueError(f"unknown task {spec.task!r}")
    looks_local = Path(spec.source).is_absolute() or spec.source.startswith((".", "~"))
    if looks_local and not Path(spec.source).expanduser().is_dir():
        raise failure(
            "model_load", "model_missing", detail=f"there is no model folder at {spec.source}"
        )
    cuda = torch.cuda.is_available()
    auto_class, kwargs = _loading_arguments(spec, cuda=cuda)
    try:
        tokenizer = _load_tokenizer(spec)
        # The base pane's classification head is untrained: seeding makes it
        # the same head every time this base is loaded, without touching the
        # caller's random state.
        devices = list(range(torch.cuda.device_count())) if cuda else []
        with quiet_loading(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            model = auto_class.from_pretrained(spec.source, **kwargs)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        free_memory()
        raise failure("out_of_memory", "model_too_large", detail=detail_of(exc)) from exc
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
        raise failure("model_load", "model_unreadable", detail=detail_of(exc)) from exc
    model.eval()
    if spec.task == SEQUENCE_CLASSIFICATION:
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        labels = tuple(model.config.id2label[i] for i in range(model.config.num_labels))
    else:
        labels = ()
    return LoadedModel(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        base_bytes=model.get_memory_footprint(),
        labels=labels,
        stop_token_ids=stop_token_ids(model, tokenizer) if spec.task == CAUSAL_LM else [],
        max_positions=getattr(model.config, "max_position_embeddings", None),
    )


def _loading_arguments(spec: ModelSpec, *, cuda: bool):
    """The transformers Auto class and from_pretrained arguments for `spec`."""
    import torch

    from jobs.training.loading import compute_dtype_name, quantization_config

    compute_dtype = getattr(torch, compute_dtype_name())
    kwargs: dict[str, Any] = {}
    # bitsandbytes' CPU 4-bit path fails for encoders (FINDINGS.md), so a
    # QLoRA classifier is served from a full-precision base on a CPU; its
    # adapter loads onto either.
    quantized = spec.quantized and (spec.task == CAUSAL_LM or cuda)
    if quantized:
        kwargs["quantization_config"] = quantization_config(compute_dtype)
        if spec.task == SEQUENCE_CLASSIFICATION:
            kwargs["quantization_config"].llm_int8_skip_modules = ["classifier", "score", "pooler"]
    else:
        kwargs["dtype"] = compute_dtype
    if cuda:
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    if spec.task == CAUSAL_LM:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM, kwargs
    from transformers import AutoModelForSequenceClassification

    if spec.labels:
        kwargs.update(
            num_labels=len(spec.labels),
            id2label=dict(enumerate(spec.labels)),
            label2id={label: i for i, label in enumerate(spec.labels)},
        )
    return AutoModelForSequenceClassification, kwargs


def _load_tokenizer(spec: ModelSpec):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.source)
    if tokenizer.pad_token is None:
        # Llama-style tokenizers ship without one; padding is masked anyway.
        tokenizer.pad_token = tokenizer.eos_token
    # Batched prompts of different lengths must end where generation starts.
    tokenizer.padding_side = "left" if spec.task == CAUSAL_LM else "right"
    return tokenizer


def stop_token_ids(model, tokenizer) -> list[int]:
    """eos, and the end-of-turn token the chat template writes after each turn."""
    ids: list[int] = []
    configured = getattr(model.generation_config, "eos_token_id", None)
    for value in [configured, tokenizer.eos_token_id]:
        ids.extend(value if isinstance(value, list) else [value])
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    for token in END_OF_TURN_TOKENS:
        if token in template:
            token_id = tokenizer.convert_tokens_to_ids(token)
            if token_id is not None and token_id != tokenizer.unk_token_id:
                ids.append(token_id)
    return sorted({token_id for token_id in ids if token_id is not None})


def free_memory() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- sizes --------------------------------------------------------------------------------


def estimate_bytes(spec: ModelSpec) -> int:
    """Roughly what loading `spec` will take, from its weight files (0 if unknown).

    Hub ids are looked up in the local Hugging Face cache only.
    """
    folder = _local_folder(spec.source)
    if folder is None:
        return 0
    for pattern in WEIGHT_FILES:  # from_pretrained prefers safetensors
        size = sum(path.stat().st_size for path in folder.glob(pattern))
        if size:
            return int(size / FOUR_BIT_SHRINK) if spec.quantized else size
    return 0


def _local_folder(source: str) -> Path | None:
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source, local_files_only=True))
    except Exception:  # not cached, not a valid id: the estimate is unknown
        return None


def adapter_file_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("adapter_model.*"))
