"""Base vs fine-tuned on a validation set: the numbers behind "did fine-tuning help?".

A preference job (DPO, KTO) is set against its parent instead: the adapter
it started from, or the base (preference.py's `evaluate_preference`, which
shares this module's batching under the pool's lock).

Every batch runs the base and the fine-tune together, each row with its own
adapter (PEFT's mixed adapter batches), so the two are measured on the same
inputs with one pass over the data. The pool's lock is held per batch, not
for the whole evaluation, so a playground request on the same worker waits
for one batch at most.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from serving.errors import detail_of, failure

from . import metrics
from .pool import BASE_ADAPTER, AdapterSpec, LoadedModel, ModelPool, ModelSpec, ServingFailure

logger = logging.getLogger(__name__)

LOSS_ROWS = 512  # rows scored for validation loss
CLASSIFICATION_ROWS = 2000
MAX_NEW_TOKENS = 256
REFERENCE_SLACK = 8  # new tokens allowed beyond the longest reference
GENERATION_CHUNK = 8  # sample rows per batched generate (twice as many sequences)
LOSS_BATCH = 16  # rows per loss batch at most (twice as many sequences)
CLASSIFICATION_BATCH = 32
# Logits are rows x tokens x vocabulary floats: keep one batch's under this.
LOGITS_BUDGET_BYTES = 256 * 1024 * 1024

Progress = Callable[[int, int], None] | None


def evaluate_generation(
    pool: ModelPool,
    model: ModelSpec,
    adapter: AdapterSpec,
    rows: list[dict],
    *,
    sample_size: int = 50,
    on_progress: Progress = None,
) -> dict:
    """Validation loss, exact match and ROUGE-L of the base and the fine-tune.

    `rows` are chat records ending with an assistant turn. Loss covers the
    first 512 rows, the completion tokens only (the last assistant turn and
    its end-of-turn token); exact match and ROUGE-L the first `sample_size`
    rows, decoded greedily. Calls `on_progress(done, total)` after each batch,
    counting rows scored plus rows generated. Raises ServingFailure.
    """
    if not rows:
        raise failure("bad_input", "no_validation_rows")
    sample_size = max(0, min(sample_size, len(rows)))
    with pool.lock:
        loaded = prepared(pool, model, adapter)
        vocabulary = getattr(loaded.model.config, "vocab_size", None) or len(loaded.tokenizer)
        examples = [
            _chat_example(loaded, number, row)
            for number, row in enumerate(rows[: max(LOSS_ROWS, sample_size)], start=1)
        ]
    loss_examples = examples[:LOSS_ROWS]
    samples = examples[:sample_size]
    total = len(loss_examples) + len(samples)
    done = 0

    sums = {BASE_ADAPTER: 0.0, adapter.name: 0.0}
    tokens = 0
    # Similar lengths together: less padding, and the sum does not care about order.
    for batch in _loss_batches(sorted(loss_examples, key=_length), vocabulary):
        with pool.lock:
            loaded = prepared(pool, model, adapter)
            losses, count = guarded(_completion_losses, loaded, batch, adapter.name)
        for name, value in losses.items():
            sums[name] += value
        tokens += count
        done += len(batch)
        report_progress(on_progress, done, total)

    outputs: dict[str, list[str]] = {BASE_ADAPTER: [], adapter.name: []}
    if samples:
        new_tokens = min(
            MAX_NEW_TOKENS, max(len(e["completion_ids"]) for e in samples) + REFERENCE_SLACK
        )
        for start in range(0, len(samples), GENERATION_CHUNK):
            chunk = samples[start : start + GENERATION_CHUNK]
            with pool.lock:
                loaded = prepared(pool, model, adapter)
                texts = guarded(_greedy_replies, loaded, chunk, adapter.name, new_tokens)
            for name, replies in texts.items():
                outputs[name].extend(replies)
            done += len(chunk)
            report_progress(on_progress, done, total)

    results = {}
    sample_rows = [{"prompt": e["last_user_message"], "reference": e["reference"]} for e in samples]
    for key, name in (("base", BASE_ADAPTER), ("fine_tuned", adapter.name)):
        loss = sums[name] / tokens if tokens else None
        exact = [
            metrics.exact_match(o, e["reference"])
            for o, e in zip(outputs[name], samples, strict=True)
        ]
        rouge = [
            metrics.rouge_l(o, e["reference"]) for o, e in zip(outputs[name], samples, strict=True)
        ]
        results[key] = {
            "val_loss": loss,
            "perplexity": _perplexity(loss),
            "exact_match": sum(exact) / len(exact) if exact else None,
            "rouge_l": sum(rouge) / len(rouge) if rouge else None,
        }
        for row, output, is_exact, score in zip(
            sample_rows, outputs[name], exact, rouge, strict=True
        ):
            row[key] = output
            row[f"{key}_exact"] = is_exact
            row[f"{key}_rouge_l"] = score
    return {
        **results,
        "rows": len(loss_examples),
        "sample_size": len(samples),
        "samples": sample_rows,
    }


def evaluate_classification(
    pool: ModelPool,
    model: ModelSpec,
    adapter: AdapterSpec,
    rows: list[dict],
    *,
    sample_size: int = 50,
    on_progress: Progress = None,
) -> dict:
    """Accuracy, macro F1 and the confusion matrix of the base and the fine-tune.

    `rows` are {"text", "label"} records; the first 2,000 are scored.
    Calls `on_progress(done, total)` after each batch. Raises ServingFailure.
    """
    rows = rows[:CLASSIFICATION_ROWS]
    if not rows:
        raise failure("bad_input", "no_validation_rows")
    for number, row in enumerate(rows, start=1):
        if not isinstance(row.get("text"), str) or not isinstance(row.get("label"), str):
            raise failure("bad_input", "row_without_label", number=number)
    with pool.lock:
        loaded = prepared(pool, model, adapter)
        labels = list(loaded.labels)
    unknown = sorted({row["label"] for row in rows} - set(labels))
    if unknown:
        raise failure("bad_input", "unknown_labels", labels=", ".join(unknown[:5]))

    from .classify import label_probabilities

    predictions: dict[str, list[str | None]] = {
        BASE_ADAPTER: [None] * len(rows),
        adapter.name: [None] * len(rows),
    }
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["text"]))
    done = 0
    for start in range(0, len(order), CLASSIFICATION_BATCH):
        indices = order[start : start + CLASSIFICATION_BATCH]
        texts = [rows[i]["text"] for i in indices]
        names = [BASE_ADAPTER] * len(texts) + [adapter.name] * len(texts)
        with pool.lock:
            loaded = prepared(pool, model, adapter)
            probabilities = guarded(label_probabilities, loaded, texts * 2, names)
        best = probabilities.argmax(dim=-1).tolist()
        for position, index in enumerate(indices):
            predictions[BASE_ADAPTER][index] = labels[best[position]]
            predictions[adapter.name][index] = labels[best[len(indices) + position]]
        done += len(indices)
        report_progress(on_progress, done, len(rows))

    truth = [row["label"] for row in rows]
    result: dict = {"labels": labels, "rows": len(rows)}
    for key, name in (("base", BASE_ADAPTER), ("fine_tuned", adapter.name)):
        predicted = predictions[name]
        result[key] = {
            "accuracy": metrics.accuracy(truth, predicted),
            "macro_f1": metrics.macro_f1(truth, predicted, labels),
            "confusion": metrics.confusion_matrix(truth, predicted, labels),
        }
    k = max(0, min(sample_size, len(rows)))
    result["sample_size"] = k
    result["samples"] = [
        {
            "prompt": rows[i]["text"],
            "reference": truth[i],
            "base": predictions[BASE_ADAPTER][i],
            "fine_tuned": predictions[adapter.name][i],
            "base_exact": predictions[BASE_ADAPTER][i] == truth[i],
            "fine_tuned_exact": predictions[adapter.name][i] == truth[i],
        }
        for i in range(k)
    ]
    return result


# --- shared ---------------------------------------------------------------------------------


def prepared(pool: ModelPool, model: ModelSpec, *adapters: AdapterSpec) -> LoadedModel:
    loaded, failures = pool.prepare(model, list(adapters))
    for adapter in adapters:
        if adapter.name in failures:
            raise failures[adapter.name]
    return loaded


def guarded(work, *args):
    """work(*args) for one batch; its errors become ServingFailure (logged with their traceback)."""
    import torch

    from .pool import free_memory

    try:
        return work(*args)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        free_memory()
        raise failure("out_of_memory", "evaluation_out_of_memory", detail=detail_of(exc)) from exc
    except ServingFailure:
        raise
    except Exception as exc:
        logger.exception("Evaluation batch failed")
        raise failure("generation", "evaluation_model_failed", detail=detail_of(exc)) from exc


def report_progress(on_progress: Progress, done: int, total: int) -> None:
    if on_progress is not None:
        on_progress(done, total)


def _perplexity(loss: float | None) -> float | None:
    if loss is None:
        return None
    # exp overflows a float past ~709; a perplexity that large means "no idea" anyway.
    return math.exp(loss) if loss < 700 else None


# --- generation: examples, loss, replies --------------------------------------------------------


def _chat_example(loaded: LoadedModel, number: int, row: dict) -> dict:
    """A validation row as prompt and completion token ids, split where the reply starts."""
    tokenizer = loaded.tokenizer
    messages = row.get("messages") if isinstance(row, dict) else None
    if (
        not isinstance(messages, list)
        or len(messages) < 2
        or not isinstance(messages[-1], dict)
        or messages[-1].get("role") != "assistant"
    ):
        raise failure("bad_input", "row_without_reply", number=number)
    if not tokenizer.chat_template:
        raise failure("bad_input", "no_chat_template_to_evaluate")
    try:
        prompt_text = tokenizer.apply_chat_template(
            messages[:-1], add_generation_prompt=True, tokenize=False
        )
        full_text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception as exc:  # the template's own raise_exception() (jinja2 TemplateError)
        raise failure(
            "bad_input", "row_template_refused", number=number, detail=detail_of(exc)
        ) from exc
    reference = messages[-1].get("content") or ""
    if full_text.startswith(prompt_text):
        completion_text = _through_end_of_turn(loaded, full_text[len(prompt_text) :])
    else:
        completion_text = reference + (tokenizer.eos_token or "")
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion_text, add_special_tokens=False)["input_ids"]
    limit = loaded.max_positions
    if limit is not None and len(prompt_ids) + len(completion_ids) > limit:
        # Keep the reply, and as much of the prompt's end as fits.
        completion_ids = completion_ids[: limit - 1]
        prompt_ids = prompt_ids[-(limit - len(completion_ids)) :]
    last_user = next(
        (m.get("content", "") for m in reversed(messages[:-1]) if m.get("role") == "user"), ""
    )
    return {
        "prompt_ids": prompt_ids,
        "completion_ids": completion_ids,
        "reference": reference,
        "last_user_message": last_user,
    }


def _through_end_of_turn(loaded: LoadedModel, completion: str) -> str:
    """The completion through its end-of-turn token (the template may add a newline)."""
    tokens = loaded.tokenizer.convert_ids_to_tokens(loaded.stop_token_ids)
    ends = [
        completion.find(token) + len(token) for token in tokens if token and token in completion
    ]
    return completion[: min(ends)] if ends else completion


def _length(example: dict) -> int:
    return len(example["prompt_ids"]) + len(example["completion_ids"])


def _loss_batches(examples: list[dict], vocabulary: int):
    """Batches of examples sorted by length, as many as the logits budget allows."""
    batch: list[dict] = []
    for example in examples:
        longest = max([_length(e) for e in batch] + [_length(example)])
        rows = 2 * (len(batch) + 1)  # base and fine-tuned
        logits_bytes = rows * longest * vocabulary * 4
        if batch and (len(batch) >= LOSS_BATCH or logits_bytes > LOGITS_BUDGET_BYTES):
            yield batch
            batch = []
        batch.append(example)
    if batch:
        yield batch


def padded_batch(sequences: list[list[int]], starts: list[int], pad: int | None):
    """(ids, attention mask, scored mask) of token `sequences`, right-padded
    (positions count from the first token without position ids); a row's
    scored tokens are those from its `starts` entry (its answer) on."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad if pad is not None else 0, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    scored = torch.zeros((len(sequences), width), dtype=torch.bool)
    for row, (sequence, start) in enumerate(zip(sequences, starts, strict=True)):
        ids[row, : len(sequence)] = torch.tensor(sequence)
        attention[row, : len(sequence)] = 1
        scored[row, start : len(sequence)] = True
    return ids, attention, scored


def _completion_losses(loaded: LoadedModel, batch: list[dict], name: str):
    """The summed negative log-likelihood of the completion tokens, base and
    fine-tuned, and how many tokens that is."""
    import torch

    ids, attention, scored = padded_batch(
        [e["prompt_ids"] + e["completion_ids"] for e in batch],
        [len(e["prompt_ids"]) for e in batch],
        loaded.tokenizer.pad_token_id,
    )
    device = loaded.device()
    ids, attention, scored = (t.repeat(2, 1).to(device) for t in (ids, attention, scored))
    names = [BASE_ADAPTER] * len(batch) + [name] * len(batch)
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids, attention_mask=attention, adapter_names=names).logits
        # Position t predicts token t + 1.
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), ids[:, 1:], reduction="none"
        )
        nll = (nll * scored[:, 1:]).sum(dim=1)
    half = len(batch)
    count = int(scored[:half].sum())
    return {BASE_ADAPTER: float(nll[:half].sum()), name: float(nll[half:].sum())}, count


def _greedy_replies(loaded: LoadedModel, chunk: list[dict], name: str, new_tokens: int):
    """Greedy replies to each example's prompt, base and fine-tuned in one batch."""
    import torch

    tokenizer = loaded.tokenizer
    prompts = [e["prompt_ids"] for e in chunk] * 2
    width = max(len(p) for p in prompts)
    if loaded.max_positions is not None:
        new_tokens = max(1, min(new_tokens, loaded.max_positions - width))
    pad = tokenizer.pad_token_id
    # Left padding: every row's reply starts at the same column.
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    names = [BASE_ADAPTER] * len(chunk) + [name] * len(chunk)
    device = loaded.device()
    with torch.inference_mode():
        output = loaded.model.generate(
            input_ids=ids.to(device),
            attention_mask=attention.to(device),
            adapter_names=names,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            max_new_tokens=new_tokens,
            eos_token_id=loaded.stop_token_ids or None,
            pad_token_id=pad,
        )
    stops = set(loaded.stop_token_ids)
    replies = []
    for row in output[:, width:].tolist():
        cut = next((i for i, token in enumerate(row) if token in stops), len(row))
        replies.append(tokenizer.decode(row[:cut], skip_special_tokens=True))
    half = len(chunk)
    return {BASE_ADAPTER: replies[:half], name: replies[half:]}
