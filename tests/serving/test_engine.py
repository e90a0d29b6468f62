"""The inference engine on the real demo models, with adapters trained here.

One module fixture trains the adapters (under a minute on two quiet cores):
two LoRA adapters and a QLoRA adapter of tailor-tiny on support routing, and a
LoRA adapter of MiniLM on sentiment. HF_HUB_OFFLINE makes sure nothing is fetched.
"""

import dataclasses
import itertools
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.config import JobConfig
from jobs.training import RunPaths, run_training
from serving.engine import (
    AdapterSpec,
    GenerationParams,
    ModelPool,
    ModelSpec,
    PaneSpec,
    ServingFailure,
    classify,
    evaluate_classification,
    evaluate_generation,
    generate,
)
from tests.samples import ROOT, offline, routing_rows, sentiment_rows, write_jsonl  # noqa: F401

GREEDY = GenerationParams(max_new_tokens=12, temperature=0)
BIG = 10**10  # a memory budget nothing here reaches

# The first test to use `trained` pays for the training: about a minute, several
# on a busy machine.
pytestmark = [pytest.mark.training, pytest.mark.timeout(600)]


def train(
    source: str, train_file: Path, out: Path, *, method="lora", steps=40, seed=42, task="causal-lm"
):
    config = JobConfig(name="engine test")
    config.model.method = method
    config.lora.rank, config.lora.alpha = 8, 16
    config.training = dataclasses.replace(
        config.training, max_steps=steps, batch_size=16, max_seq_length=64,
        learning_rate=3e-3, warmup_ratio=0.0, logging_steps=10, seed=seed,
    )  # fmt: skip
    result = run_training(
        config, RunPaths(source, train_file, None, out), task=task,
        on_event=lambda event: None, should_stop=lambda: False,
    )  # fmt: skip
    return str(result.adapter_dir)


@dataclasses.dataclass
class Trained:
    tiny: ModelSpec
    tiny_4bit: ModelSpec
    minilm: ModelSpec
    routing: AdapterSpec  # 40 steps: routes most tickets right
    routing_short: AdapterSpec  # 10 steps, another seed: a different fine-tune
    routing_qlora: AdapterSpec  # 4 steps on the 4-bit base
    sentiment: AdapterSpec


@pytest.fixture(scope="module")
def trained(demo_models, tmp_path_factory) -> Trained:
    folder = tmp_path_factory.mktemp("adapters")
    tiny = str(demo_models.tiny_path())
    minilm = str(demo_models.minilm_path())
    routing = write_jsonl(folder / "routing.jsonl", routing_rows("train", 300))
    reviews = write_jsonl(folder / "reviews.jsonl", sentiment_rows("train", 400))
    sentiment = train(minilm, reviews, folder / "c", steps=30, task="sequence-classification")
    labels = tuple(json.loads((Path(sentiment) / "tailor_labels.json").read_text()))
    return Trained(
        tiny=ModelSpec(tiny, "causal-lm"),
        tiny_4bit=ModelSpec(tiny, "causal-lm", quantized=True),
        minilm=ModelSpec(minilm, "sequence-classification", labels=labels),
        routing=AdapterSpec("ft_routing", train(tiny, routing, folder / "a", seed=1)),
        routing_short=AdapterSpec("ft_short", train(tiny, routing, folder / "b", steps=10, seed=2)),
        routing_qlora=AdapterSpec(
            "ft_qlora", train(tiny, routing, folder / "q", method="qlora", steps=4, seed=3)
        ),
        sentiment=AdapterSpec("ft_sentiment", sentiment),
    )


@pytest.fixture(scope="module")
def pool() -> ModelPool:
    """A pool shared by tests that do not count loads or evictions."""
    return ModelPool(BIG)


def chat(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# --- batching ---------------------------------------------------------------------------------


def test_a_batch_of_the_base_and_two_adapters_matches_separate_calls_token_for_token(trained, pool):
    panes = [
        PaneSpec(trained.tiny),
        PaneSpec(trained.tiny, trained.routing),
        PaneSpec(trained.tiny, trained.routing_short),
    ]
    messages = chat("My parcel never arrived and the tracking page is blank")
    batched = generate(pool, panes, messages=messages, params=GREEDY)
    alone = [generate(pool, [pane], messages=messages, params=GREEDY)[0] for pane in panes]

    assert [r.text for r in batched] == [r.text for r in alone]
    assert [r.completion_tokens for r in batched] == [r.completion_tokens for r in alone]
    assert all(r.error is None for r in batched)
    # The fine-tune answers with a routing label and stops at <|im_end|>, which is not shown.
    assert batched[1].text in {"billing", "shipping", "technical", "account"}
    assert batched[1].finish_reason == "stop"
    assert batched[1].completion_tokens < GREEDY.max_new_tokens
    # The untrained base rambles to the limit.
    assert (batched[0].finish_reason, batched[0].completion_tokens) == ("length", 12)
    for result in batched:
        assert result.prompt_tokens > 0
        assert 0 < result.first_token_seconds <= result.seconds


def test_panes_of_two_bases_run_one_base_after_the_other(trained, pool):
    panes = [
        PaneSpec(trained.tiny, trained.routing),
        PaneSpec(trained.tiny_4bit, trained.routing_qlora),
        PaneSpec(trained.tiny),
    ]
    results = generate(pool, panes, prompt="Hello", params=GREEDY)
    assert all(r.error is None and r.completion_tokens > 0 for r in results)
    # The first base's panes ran together: they got their first token at the same moment.
    assert results[0].first_token_seconds == results[2].first_token_seconds
    assert results[1].first_token_seconds > results[0].first_token_seconds


def test_the_same_seed_samples_the_same_text_and_another_seed_another(trained, pool):
    panes = [PaneSpec(trained.tiny), PaneSpec(trained.tiny, trained.routing)]

    def sample(seed):
        params = GenerationParams(max_new_tokens=16, temperature=1.0, seed=seed)
        return [r.text for r in generate(pool, panes, prompt="Order", params=params)]

    first = sample(7)
    assert sample(7) == first
    assert sample(8) != first


# --- the pool ---------------------------------------------------------------------------------


def test_adding_an_adapter_does_not_load_the_base_again(trained):
    pool = ModelPool(BIG)
    generate(pool, [PaneSpec(trained.tiny)], prompt="Hi", params=GREEDY)
    assert pool.loads == 1
    generate(pool, [PaneSpec(trained.tiny, trained.routing)], prompt="Hi", params=GREEDY)
    generate(pool, [PaneSpec(trained.tiny, trained.routing_short)], prompt="Hi", params=GREEDY)
    assert pool.loads == 1
    [entry] = pool.stats()
    assert entry["adapters"] == ["ft_routing", "ft_short"]
    assert (entry["source"], entry["task"], entry["quantized"]) == (
        trained.tiny.source, "causal-lm", False
    )  # fmt: skip
    adapter_bytes = sum(
        f.stat().st_size for a in (trained.routing, trained.routing_short)
        for f in Path(a.path).glob("adapter_model.*")
    )  # fmt: skip
    assert entry["bytes"] > adapter_bytes > 0


def test_a_quantized_and_a_full_precision_base_are_separate_entries(trained):
    pool = ModelPool(BIG)
    panes = [PaneSpec(trained.tiny_4bit, trained.routing_qlora), PaneSpec(trained.tiny)]
    results = generate(pool, panes, prompt="Hi", params=GREEDY)
    assert all(r.error is None for r in results)
    assert pool.loads == 2
    entries = {e["quantized"]: e for e in pool.stats()}
    assert entries[True]["adapters"] == ["ft_qlora"] and entries[False]["adapters"] == []
    # 4-bit weights take well under half the memory of float32 ones.
    assert entries[True]["bytes"] < entries[False]["bytes"] / 2


def test_a_budget_for_one_model_evicts_the_least_recently_used(trained):
    probe = ModelPool(BIG)
    generate(probe, [PaneSpec(trained.tiny)], prompt="Hi", params=GREEDY)
    one_model = probe.stats()[0]["bytes"]
    probe.evict_all()
    assert probe.stats() == []

    pool = ModelPool(one_model + 1024)
    generate(pool, [PaneSpec(trained.tiny)], prompt="Hi", params=GREEDY)
    generate(pool, [PaneSpec(trained.tiny_4bit)], prompt="Hi", params=GREEDY)
    assert [e["quantized"] for e in pool.stats()] == [True]
    generate(pool, [PaneSpec(trained.tiny)], prompt="Hi", params=GREEDY)
    assert [e["quantized"] for e in pool.stats()] == [False]
    assert pool.loads == 3


def test_a_model_larger_than_the_budget_still_loads_alone(trained):
    pool = ModelPool(1)
    generate(pool, [PaneSpec(trained.tiny_4bit)], prompt="Hi", params=GREEDY)
    results = generate(pool, [PaneSpec(trained.tiny, trained.routing)], prompt="Hi", params=GREEDY)
    assert results[0].error is None
    assert [(e["quantized"], e["adapters"]) for e in pool.stats()] == [(False, ["ft_routing"])]


def test_adapters_beyond_the_cap_are_deleted_least_recently_used_first(trained):
    pool = ModelPool(BIG, max_adapters=2)
    for adapter in (trained.routing, trained.routing_short, trained.routing_qlora):
        generate(pool, [PaneSpec(trained.tiny, adapter)], prompt="Hi", params=GREEDY)
    assert pool.stats()[0]["adapters"] == ["ft_short", "ft_qlora"]
    again = generate(
        pool, [PaneSpec(trained.tiny, trained.routing)], messages=chat("Refund"), params=GREEDY
    )
    fresh = generate(
        ModelPool(BIG),
        [PaneSpec(trained.tiny, trained.routing)],
        messages=chat("Refund"),
        params=GREEDY,
    )
    assert again[0].text == fresh[0].text
    assert pool.stats()[0]["adapters"] == ["ft_qlora", "ft_routing"]
    assert pool.loads == 1


# --- failures ---------------------------------------------------------------------------------


def test_a_pane_whose_adapter_folder_is_missing_fails_alone(trained, pool, tmp_path):
    missing = AdapterSpec("ft_missing", str(tmp_path / "gone"))
    panes = [
        PaneSpec(trained.tiny),
        PaneSpec(trained.tiny, missing),
        PaneSpec(trained.tiny, trained.routing),
    ]
    results = generate(pool, panes, messages=chat("Where is my order?"), params=GREEDY)
    # The sentence is everyone's; the folder, the worker's, is for operators only.
    assert results[1].error == "The fine-tuned adapter could not be loaded: its files are missing."
    assert results[1].error_detail == f"there is no adapter at {tmp_path / 'gone'}"
    assert (results[1].finish_reason, results[1].text) == ("error", "")
    assert results[0].text and results[2].text
    assert results[0].error is None and results[2].error is None


def test_a_corrupt_first_adapter_fails_alone_and_leaves_the_base_clean(trained, tmp_path):
    corrupt = tmp_path / "corrupt"
    shutil.copytree(trained.routing.path, corrupt)
    (corrupt / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    pool = ModelPool(BIG)
    panes = [
        PaneSpec(trained.tiny, AdapterSpec("ft_corrupt", str(corrupt))),
        PaneSpec(trained.tiny),
        PaneSpec(trained.tiny, trained.routing),
    ]
    messages = chat("I was charged twice")
    results = generate(pool, panes, messages=messages, params=GREEDY)
    assert results[0].error.startswith("The fine-tuned adapter could not be loaded: ")
    expected = generate(ModelPool(BIG), panes[1:], messages=messages, params=GREEDY)
    assert [r.text for r in results[1:]] == [r.text for r in expected]
    assert pool.stats()[0]["adapters"] == ["ft_routing"]


def test_a_base_that_cannot_be_loaded_fails_its_panes_only(trained, pool, tmp_path):
    missing = ModelSpec(str(tmp_path / "no-model"), "causal-lm")
    panes = [PaneSpec(missing), PaneSpec(missing, trained.routing), PaneSpec(trained.tiny)]
    results = generate(pool, panes, prompt="Hello", params=GREEDY)
    message = "The base model could not be loaded: its files are missing."
    assert [r.error for r in results] == [message, message, None]
    detail = f"there is no model folder at {tmp_path / 'no-model'}"
    assert [r.error_detail for r in results] == [detail, detail, None]
    assert results[2].text


def test_a_request_with_both_messages_and_a_prompt_is_refused(trained, pool):
    with pytest.raises(ServingFailure) as caught:
        generate(pool, [PaneSpec(trained.tiny)], messages=chat("Hi"), prompt="Hi", params=GREEDY)
    assert (caught.value.code, caught.value.message) == (
        "bad_input", "Send either chat messages or a prompt, not both."
    )  # fmt: skip


# --- streaming and stopping -------------------------------------------------------------------


def test_progress_texts_only_grow_and_end_as_the_results(trained, pool):
    panes = [PaneSpec(trained.tiny), PaneSpec(trained.tiny, trained.routing)]
    seen: list[list[str]] = []
    params = GenerationParams(max_new_tokens=24, temperature=0.8, seed=3)
    results = generate(pool, panes, prompt="The order", params=params, on_progress=seen.append)
    assert len(seen) > 5
    for before, after in itertools.pairwise(seen):
        assert len(after) == 2
        assert all(new.startswith(old) for old, new in zip(before, after, strict=True))
    assert seen[-1] == [r.text for r in results]


def test_should_stop_ends_generation_early(trained, pool):
    checks = []

    def should_stop():
        checks.append(1)
        return len(checks) > 3

    params = GenerationParams(max_new_tokens=60, temperature=0)
    [result] = generate(
        pool, [PaneSpec(trained.tiny)], prompt="Hello", params=params, should_stop=should_stop
    )
    assert result.finish_reason == "stop"
    assert 1 <= result.completion_tokens <= 4


def test_an_error_in_the_callers_progress_callback_reaches_the_caller_unchanged(trained, pool):
    class SocketClosed(Exception):
        pass

    calls = []

    def on_progress(texts):
        calls.append(texts)
        raise SocketClosed("the socket closed")

    panes = [PaneSpec(trained.tiny), PaneSpec(trained.tiny, trained.routing)]
    with pytest.raises(SocketClosed, match="the socket closed"):
        generate(pool, panes, prompt="Hi", params=GREEDY, on_progress=on_progress)
    assert len(calls) == 1  # not taken for a failed batch and retried pane by pane


# --- classification ---------------------------------------------------------------------------


def test_classify_gives_probabilities_over_the_labels_and_the_fine_tune_is_right(trained, pool):
    panes = [PaneSpec(trained.minilm), PaneSpec(trained.minilm, trained.sentiment)]
    happy = classify(pool, panes, text="Absolutely love it. Works perfectly and arrived early!")
    unhappy = classify(pool, panes, text="Broke after two days. Awful quality, a waste of money.")
    for result in happy + unhappy:
        assert list(result.probabilities) == ["negative", "positive"]
        assert math.isclose(sum(result.probabilities.values()), 1.0, rel_tol=1e-5)
        assert result.label == max(result.probabilities, key=result.probabilities.get)
    assert (happy[1].label, unhappy[1].label) == ("positive", "negative")


def test_a_mixed_classification_batch_matches_panes_one_by_one(trained, pool):
    panes = [PaneSpec(trained.minilm), PaneSpec(trained.minilm, trained.sentiment)]
    text = "Decent value, though the strap broke."
    together = classify(pool, panes, text=text)
    alone = [classify(pool, [pane], text=text)[0] for pane in panes]
    for a, b in zip(together, alone, strict=True):
        # In bfloat16 (CPUs that have it) the batch's shape moves the rounding a little.
        assert a.probabilities == pytest.approx(b.probabilities, abs=5e-3)
        assert a.label == b.label
    # The base pane really is the base in a mixed batch: on a happy and an
    # unhappy text the fine-tune's answer flips, and the untrained head cannot
    # follow it on both (on one ambiguous text the two may land close).
    gaps = []
    for clear in ("Absolutely love it. Works perfectly!", "Broke after two days. Awful quality."):
        base, tuned = classify(pool, panes, text=clear)
        gaps.append(abs(base.probabilities["positive"] - tuned.probabilities["positive"]))
    assert max(gaps) > 2e-2, gaps


def test_the_base_classifier_head_is_the_same_every_time_it_is_loaded(trained):
    text = "It is fine."
    first = classify(ModelPool(BIG), [PaneSpec(trained.minilm)], text=text)[0]
    second = classify(ModelPool(BIG), [PaneSpec(trained.minilm)], text=text)[0]
    assert first.probabilities == second.probabilities


# --- evaluation -------------------------------------------------------------------------------


def test_evaluate_generation_shows_the_fine_tune_beating_the_base(trained, pool):
    rows = routing_rows("validation", 40)
    progress = []
    report = evaluate_generation(
        pool, trained.tiny, trained.routing, rows, sample_size=40,
        on_progress=lambda done, total: progress.append((done, total)),
    )  # fmt: skip
    base, tuned = report["base"], report["fine_tuned"]
    assert tuned["exact_match"] > base["exact_match"]
    assert tuned["val_loss"] < base["val_loss"]
    for scores in (base, tuned):
        assert scores["perplexity"] == pytest.approx(math.exp(scores["val_loss"]))
        assert 0 <= scores["rouge_l"] <= 1
    assert (report["rows"], report["sample_size"], len(report["samples"])) == (40, 40, 40)
    sample = report["samples"][0]
    assert sample["prompt"] == rows[0]["messages"][-2]["content"]
    assert sample["reference"] == rows[0]["messages"][-1]["content"]
    assert set(sample) == {
        "prompt", "reference", "base", "fine_tuned", "base_exact", "fine_tuned_exact",
        "base_rouge_l", "fine_tuned_rouge_l",
    }  # fmt: skip
    exact = [s["fine_tuned_exact"] for s in report["samples"]]
    assert sum(exact) / len(exact) == tuned["exact_match"]
    assert progress[-1] == (80, 80)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)


def test_evaluate_generation_replies_match_the_playground(trained, pool):
    rows = routing_rows("validation", 3)
    report = evaluate_generation(pool, trained.tiny, trained.routing, rows, sample_size=3)
    params = GenerationParams(max_new_tokens=20, temperature=0)
    for row, sample in zip(rows, report["samples"], strict=True):
        [result] = generate(
            pool,
            [PaneSpec(trained.tiny, trained.routing)],
            messages=row["messages"][:-1],
            params=params,
        )
        assert sample["fine_tuned"] == result.text


def test_evaluate_classification_shows_the_fine_tune_beating_the_base(trained, pool):
    rows = sentiment_rows("validation", 60)
    report = evaluate_classification(pool, trained.minilm, trained.sentiment, rows, sample_size=5)
    assert report["labels"] == ["negative", "positive"]
    # 30 steps is a sketch of a fine-tune (bfloat16 on CPUs that have it moves it
    # by a few points); the Quick preset's >= 0.90 is checked in the browser test.
    assert report["fine_tuned"]["accuracy"] >= report["base"]["accuracy"] + 0.1
    assert report["fine_tuned"]["accuracy"] >= 0.65
    for key in ("base", "fine_tuned"):
        confusion = report[key]["confusion"]
        assert sum(map(sum, confusion)) == 60
        right = sum(confusion[i][i] for i in range(2))
        assert right / 60 == pytest.approx(report[key]["accuracy"])
    assert (report["rows"], report["sample_size"], len(report["samples"])) == (60, 5, 5)
    sample = report["samples"][0]
    assert (sample["prompt"], sample["reference"]) == (rows[0]["text"], rows[0]["label"])
    assert sample["fine_tuned_exact"] == (sample["fine_tuned"] == sample["reference"])


def test_an_evaluation_with_a_missing_adapter_is_a_model_load_failure(trained, pool, tmp_path):
    missing = AdapterSpec("ft_gone", str(tmp_path / "gone"))
    with pytest.raises(ServingFailure) as caught:
        evaluate_classification(pool, trained.minilm, missing, sentiment_rows("validation", 4))
    assert (caught.value.code, caught.value.message, caught.value.detail) == (
        "model_load",
        "The fine-tuned adapter could not be loaded: its files are missing.",
        f"there is no adapter at {tmp_path / 'gone'}",
    )


# --- packaging --------------------------------------------------------------------------------


def test_importing_the_engine_loads_no_machine_learning_library():
    code = (
        "import sys, serving.engine; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "[]"
