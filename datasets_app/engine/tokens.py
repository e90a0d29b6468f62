"""Rows measured in tokens, as a model's tokenizer and chat template see them.

Plain Python on the `tokenizers` library (Rust, no torch, no transformers: a
validation worker loads it in milliseconds) and jinja2 for the chat
template, rendered the way transformers renders it (a sandbox, trim_blocks,
lstrip_blocks, and its `{% generation %}` tag). A `TokenRule` is what
validate() is given: how to count a batch of canonical records, and the
length a job cuts rows at, which the caller decides from the rows'
character summary (the job wizard's presets decide from characters too).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jobs.vocabulary import CLASSIFICATION, FEEDBACK, PREFERENCE


class TokenizerUnavailable(Exception):
    """The tokenizer could not be loaded: `reason` says why, in a few words;
    `model` names whose tokenizer it was (set by whoever knows the model)."""

    def __init__(self, reason: str, model: str = "the default model"):
        super().__init__(reason)
        self.reason, self.model = reason, model


@dataclass(frozen=True)
class TokenRule:
    """How a validation measures rows in tokens."""

    model: str  # the model whose tokenizer counts, as the report names it
    count: Callable[[list[dict]], list[int]]  # canonical records -> their token counts
    max_length: Callable[[dict], int]  # the rows' character summary -> where a job cuts


def load_token_counter(folder: Path, task: str) -> Callable[[list[dict]], list[int]]:
    """A counter of canonical records' tokens with the tokenizer in `folder`.

    A conversation is counted as its chat template renders it (the special
    tokens the template writes included); without a template, as its
    contents joined by newlines. A preference pair counts as its prompt with
    its longer answer, a feedback row as its prompt with its answer. A text
    is counted with the tokenizer's own special tokens ([CLS] … [SEP]), as a
    classifier reads it. Raises
    TokenizerUnavailable when the folder holds no loadable tokenizer.
    """
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise TokenizerUnavailable("the tokenizers library is not installed") from None
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise TokenizerUnavailable("its folder holds no tokenizer.json")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # the library raises its own kinds for a bad file
        raise TokenizerUnavailable(f"tokenizer.json could not be read: {error}"[:200]) from None
    # A saved tokenizer may pad or cut every text to a length: a length is
    # what is wanted here, before any job pads or cuts.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    config = _read_config(Path(folder))
    if task == CLASSIFICATION:

        def count_texts(records: list[dict]) -> list[int]:
            encoded = tokenizer.encode_batch([record["text"] for record in records])
            return [len(encoding.ids) for encoding in encoded]

        return count_texts

    render = _chat_renderer(Path(folder), config)

    def count_conversations(records: list[dict]) -> list[int]:
        texts = [render(record["messages"]) for record in records]
        # The template writes the special tokens itself (transformers, too,
        # tokenizes a rendered chat without adding any).
        encoded = tokenizer.encode_batch(texts, add_special_tokens=render is _joined)
        return [len(encoding.ids) for encoding in encoded]

    if task == PREFERENCE:

        def count_pairs(records: list[dict]) -> list[int]:
            # A trainer reads the prompt with each answer: the longer of the two is the row's.
            chosen = count_conversations([_answered(record, "chosen") for record in records])
            rejected = count_conversations([_answered(record, "rejected") for record in records])
            return [max(pair) for pair in zip(chosen, rejected, strict=True)]

        return count_pairs
    if task == FEEDBACK:
        return lambda records: count_conversations(
            [_answered(record, "completion") for record in records]
        )
    return count_conversations


def _answered(record: dict, answer: str) -> dict:
    """A preference or feedback record's prompt followed by one of its answers."""
    return {"messages": [*record["messages"], {"role": "assistant", "content": record[answer]}]}


def _read_config(folder: Path) -> dict:
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _joined(messages: list[dict]) -> str:
    return "\n".join(message["content"] for message in messages)


def _chat_renderer(folder: Path, config: dict) -> Callable[[list[dict]], str]:
    """The chat template as a function of the messages, or _joined without one."""
    template_file = folder / "chat_template.jinja"
    source = template_file.read_text(encoding="utf-8") if template_file.is_file() else None
    if source is None and isinstance(config.get("chat_template"), str):
        source = config["chat_template"]
    if not source:
        return _joined
    try:
        import jinja2
        from jinja2.ext import Extension, loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        return _joined

    class Generation(Extension):
        """transformers' `{% generation %}` tag, which marks the assistant's
        words for the loss; counting needs only its text."""

        tags = frozenset({"generation"})

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            call = self.call_method("_render")
            return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.TemplateError(message)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols]
    )
    environment.filters["tojson"] = json.dumps
    environment.globals["raise_exception"] = raise_exception
    try:
        template = environment.from_string(source)
    except jinja2.TemplateError:
        return _joined
    specials = {
        name: config[name]
        for name in ("bos_token", "eos_token", "pad_token", "unk_token")
        if isinstance(config.get(name), str)
    }

    def render(messages: list[dict]) -> str:
        try:
            return template.render(messages=messages, add_generation_prompt=False, **specials)
        except jinja2.TemplateError:
            # A template that refuses a conversation (some allow no system
            # message): count its words without the template's markers.
            return _joined(messages)

    return render
