"""Preference accuracy: which of two answers a model prefers, given the prompt;
and the evaluation of a preference job (DPO, KTO) against its parent.

A model prefers the answer whose tokens it gives the higher mean
log-probability (per token, so a longer answer is not penalised for its
length), each answer written as the assistant's turn after the prompt's turns
through the chat template, up to and including its end-of-turn token. The
accuracy on held-out pairs is the share whose chosen answer is preferred (a
tie counts half): an absolute figure, so a parent and its child compare, and
an untrained model scores about 0.5. torch is imported inside the functions.
"""

from __future__ import annotations

import json

from serving.errors import ServingFailure, detail_of, failure

from .evaluate import (
    LOGITS_BUDGET_BYTES,
    Progress,
    guarded,
    padded_batch,
    prepared,
    report_progress,
)
from .pool import BASE_ADAPTER, END_OF_TURN_TOKENS, AdapterSpec, ModelPool, ModelSpec

BATCH = 16  # pairs per forward pass (twice as many sequences)
PAIRS = 512  # held-out pairs an evaluation scores at most
PAIRLESS_ROW = (
    "Row {number} of the validation set is neither a preference pair (a prompt, a chosen "
    "and a rejected answer) nor an answer marked good or bad."
)


def evaluate_preference(
    pool: ModelPool,
    model: ModelSpec,
    adapter: AdapterSpec,
    rows: list[dict],
    *,
    parent: AdapterSpec | None = None,
    sample_size: int = 50,
    on_progress: Progress = None,
) -> dict:
    """Preference accuracy of a DPO or KTO job's model against its parent.

    The parent is the adapter the job started from (`parent`) or, for a job
    that started a new adapter, the base; the results keep the shape of the
    other evaluations ("base" holds the parent's figures, `compared_with`
    says which it was). `rows` are held-out preference records, or feedback
    records whose good and bad answers to one prompt pair up (`pairs_of`);
    the first 512 pairs are scored, parent and tuned in turn on each batch
    under the pool's lock. Each sample says which answer each model
    prefers. Calls `on_progress(done, total)` after each batch. Raises
    ServingFailure.
    """
    try:
        pairs = pairs_of(rows)[:PAIRS]
    except ValueError as exc:
        raise ServingFailure("bad_input", PAIRLESS_ROW.format(number=exc.args[0])) from exc
    if not pairs:
        raise failure("bad_input", "no_validation_rows")
    adapters = [adapter, parent] if parent is not None else [adapter]
    before = parent.name if parent is not None else BASE_ADAPTER
    with pool.lock:
        loaded = prepared(pool, model, *adapters)
        if not loaded.tokenizer.chat_template:
            raise failure("bad_input", "no_chat_template_to_evaluate")
        vocabulary = getattr(loaded.model.config, "vocab_size", None) or len(loaded.tokenizer)
        examples = []
        for number, pair in enumerate(pairs, start=1):
            try:
                examples.append(
                    pair_example(loaded.tokenizer, number, pair, limit=loaded.max_positions)
                )
            except Exception as exc:  # the template's own raise_exception() (jinja2 TemplateError)
                raise failure(
                    "bad_input", "row_template_refused", number=number, detail=detail_of(exc)
                ) from exc
    margins: dict[str, list[float]] = {before: [0.0] * len(pairs), adapter.name: [0.0] * len(pairs)}
    done = 0
    batches = pair_batches(examples, vocabulary=vocabulary, budget_bytes=LOGITS_BUDGET_BYTES)
    for indices in batches:
        batch = [examples[i] for i in indices]
        with pool.lock:
            loaded = prepared(pool, model, *adapters)
            for name in (before, adapter.name):
                values = guarded(pair_margins, loaded.model, loaded.tokenizer, batch, name)
                for index, value in zip(indices, values, strict=True):
                    margins[name][index] = value
        done += len(indices)
        report_progress(on_progress, done, len(pairs))

    k = max(0, min(sample_size, len(pairs)))
    samples = [
        {"prompt": _last_user(pair), "reference": pair["chosen"], "rejected": pair["rejected"]}
        for pair in pairs[:k]
    ]
    results: dict = {"compared_with": "parent" if parent is not None else "base"}
    for key, name in (("base", before), ("fine_tuned", adapter.name)):
        figures = summary(margins[name])
        results[key] = {
            "preference_accuracy": figures["accuracy"],
            "mean_margin": figures["mean_margin"],
        }
        for sample, pair, margin in zip(samples, pairs, margins[name], strict=False):
            sample[key] = pair["chosen"] if margin > 0 else pair["rejected"]
            sample[f"{key}_exact"] = margin > 0
    return {**results, "rows": len(pairs), "sample_size": k, "samples": samples}


def _last_user(row: dict) -> str:
    messages = row.get("messages") or []
    return next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")


def preference_accuracy(
    model, tokenizer, records: list[dict], *, batch: int = BATCH, adapter_name: str | None = None
) -> dict:
    """{"accuracy", "pairs", "mean_margin"} of `model` on preference records
    ({"messages": prompt turns, "chosen": text, "rejected": text}).

    `mean_margin` is the mean over pairs of chosen minus rejected mean
    per-token log-probability. `adapter_name` runs a PeftModel's forward
    with that adapter (PEFT's `adapter_names`; "__base__" for none).
    ValueError for a record without prompt turns or an answer.
    """
    examples = [pair_example(tokenizer, number, record) for number, record in enumerate(records, 1)]
    margins: list[float] = []
    for start in range(0, len(examples), batch):
        margins.extend(
            pair_margins(model, tokenizer, examples[start : start + batch], adapter_name)
        )
    return summary(margins)


def summary(margins: list[float]) -> dict:
    """The accuracy, pair count and mean margin of per-pair margins."""
    if not margins:
        return {"accuracy": None, "pairs": 0, "mean_margin": None}
    wins = sum(1.0 if m > 0 else 0.5 if m == 0 else 0.0 for m in margins)
    return {
        "accuracy": wins / len(margins),
        "pairs": len(margins),
        "mean_margin": sum(margins) / len(margins),
    }


def pair_example(tokenizer, number: int, record: dict, *, limit: int | None = None) -> dict:
    """A record as token ids: the prompt, and each answer's completion after it;
    within `limit` tokens (the model's context) when given, by cutting the
    answers' ends and the prompt's start."""
    messages = record.get("messages") if isinstance(record, dict) else None
    chosen, rejected = (record or {}).get("chosen"), (record or {}).get("rejected")
    if (
        not isinstance(messages, list)
        or not messages
        or not isinstance(chosen, str)
        or not isinstance(rejected, str)
    ):
        raise ValueError(f"row {number} needs prompt messages, a chosen and a rejected answer")
    prompt_text = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    chosen_ids = _completion_ids(tokenizer, messages, prompt_text, chosen)
    rejected_ids = _completion_ids(tokenizer, messages, prompt_text, rejected)
    if limit is not None and len(prompt_ids) + max(len(chosen_ids), len(rejected_ids)) > limit:
        chosen_ids, rejected_ids = chosen_ids[: limit - 1], rejected_ids[: limit - 1]
        prompt_ids = prompt_ids[-(limit - max(len(chosen_ids), len(rejected_ids))) :]
    return {"prompt_ids": prompt_ids, "chosen_ids": chosen_ids, "rejected_ids": rejected_ids}


def _completion_ids(tokenizer, messages: list, prompt_text: str, answer: str) -> list[int]:
    full_text = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": answer}], tokenize=False
    )
    if full_text.startswith(prompt_text):
        completion = _through_end_of_turn(tokenizer, full_text[len(prompt_text) :])
    else:
        completion = answer + (tokenizer.eos_token or "")
    return tokenizer(completion, add_special_tokens=False)["input_ids"]


def _through_end_of_turn(tokenizer, completion: str) -> str:
    """The completion through its end-of-turn token (the template may add a newline)."""
    markers = {*END_OF_TURN_TOKENS, tokenizer.eos_token or ""} - {""}
    ends = [completion.find(m) + len(m) for m in markers if m in completion]
    return completion[: min(ends)] if ends else completion


def pair_margins(model, tokenizer, examples: list[dict], adapter_name: str | None) -> list[float]:
    """Chosen minus rejected mean per-token log-probability, one per example."""
    import torch

    sequences, starts = [], []
    for key in ("chosen_ids", "rejected_ids"):
        for example in examples:
            sequences.append(example["prompt_ids"] + example[key])
            starts.append(len(example["prompt_ids"]))
    ids, attention, scored = padded_batch(sequences, starts, tokenizer.pad_token_id)
    device = next(model.parameters()).device
    ids, attention, scored = ids.to(device), attention.to(device), scored.to(device)
    kwargs = {"adapter_names": [adapter_name] * len(sequences)} if adapter_name else {}
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=attention, **kwargs).logits
        # Position t predicts token t + 1.
        log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        token = log_probs.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        mask = scored[:, 1:]
        mean = (token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    half = len(examples)
    return (mean[:half] - mean[half:]).tolist()


def pairs_of(rows: list[dict]) -> list[dict]:
    """Preference records from held-out rows: preference rows as they are;
    feedback rows ({"messages", "completion", "label"}) paired, every good
    answer to a prompt with every bad answer to the same prompt.

    ValueError(number) for a row that is neither.
    """
    pairs: list[dict] = []
    feedback: dict[str, dict] = {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            raise ValueError(number)
        if isinstance(row.get("chosen"), str) and isinstance(row.get("rejected"), str):
            pairs.append(row)
        elif isinstance(row.get("completion"), str) and isinstance(row.get("label"), bool):
            key = json.dumps(row["messages"], sort_keys=True)
            answers = feedback.setdefault(key, {"messages": row["messages"], True: [], False: []})
            answers[row["label"]].append(row["completion"])
        else:
            raise ValueError(number)
    for answers in feedback.values():
        pairs.extend(
            {"messages": answers["messages"], "chosen": good, "rejected": bad}
            for good in answers[True]
            for bad in answers[False]
        )
    return pairs


def length(example: dict) -> int:
    """The longer of an example's two sequences, in tokens."""
    return len(example["prompt_ids"]) + max(
        len(example["chosen_ids"]), len(example["rejected_ids"])
    )


def pair_batches(examples: list[dict], *, vocabulary: int, budget_bytes: int, most: int = BATCH):
    """Lists of indices into `examples`, shortest first, each batch's logits
    (two sequences a pair, float32 over the vocabulary) within `budget_bytes`."""
    batch: list[int] = []
    for index in sorted(range(len(examples)), key=lambda i: length(examples[i])):
        longest = max(length(examples[i]) for i in [*batch, index])
        logits_bytes = 2 * (len(batch) + 1) * longest * vocabulary * 4
        if batch and (len(batch) >= most or logits_bytes > budget_bytes):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch
