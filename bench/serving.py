"""Benchmark: what Tailor's inference engine costs over plain PEFT, and what adapters cost.

    .venv/bin/python bench/serving.py [--new-tokens 128] [--rounds 3]

On tailor-tiny (generated here if missing) with LoRA adapters made by
initialising random LoRA weights (r 16, all linear layers, as Tailor's
default config trains them): speed and memory do not depend on what an
adapter learned.

1. Adapter switch: `set_adapter` between two attached adapters, median of 400.
2. Time to first token of `serving.engine.generate`, one fine-tuned pane,
   the model already loaded (median of 10), and on a cold pool (loading included).
3. Streaming overhead: tokens/s of `serving.engine.generate` with an
   on_progress callback doing what the worker does (json.dumps of every
   pane's text) and a stop check, over raw `model.generate` on the same
   PeftModel with the same settings (greedy, `--new-tokens` with eos
   ignored so both produce as many tokens). Runs alternate, `--rounds` each,
   best of each. Target: engine / raw >= 0.9.
4. Adapter memory: peak RSS of a fresh process holding 10 adapters on one
   base over one holding 1, each after loading and one generate. Target: <= 1.1.
5. For information: four panes (base + 3 adapters) in one batched generate
   vs the same four one after another.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_STREAMING_RATIO = 0.9
TARGET_RSS_RATIO = 1.1
PROMPT = [{"role": "user", "content": "My parcel never arrived and the tracking page is blank."}]


def tiny_model() -> Path:
    """tailor-tiny under MODELS_ROOT (default var/models), generated if missing."""
    from jobs.demo_models import TINY_NAME, make_tailor_tiny

    root = Path(os.environ.get("MODELS_ROOT", ROOT / "var" / "models"))
    path, _ = make_tailor_tiny(root / TINY_NAME)
    return path


def make_adapters(base_path: Path, folder: Path, count: int) -> list[Path]:
    """`count` LoRA adapters with random (not zero) weights, saved as PEFT folders."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    paths = []
    for index in range(count):
        torch.manual_seed(index)
        config = LoraConfig(
            r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM",
            init_lora_weights=False,
        )  # fmt: skip
        model = get_peft_model(base, config)
        paths.append(folder / f"adapter-{index}")
        model.save_pretrained(paths[-1])
        base = model.unload()  # the base without LoRA layers, for the next one
    return paths


def adapter_specs(paths: list[Path]):
    from serving.engine import AdapterSpec

    return [AdapterSpec(f"ft_{index}", str(path)) for index, path in enumerate(paths)]


# --- 1. switch ------------------------------------------------------------------------------------


def measure_switch(pool, spec, adapters) -> float:
    loaded, failures = pool.prepare(spec, adapters[:2])
    assert not failures, failures
    times = []
    for index in range(400):
        started = time.perf_counter()
        loaded.model.set_adapter(adapters[index % 2].name)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


# --- 2. time to first token -----------------------------------------------------------------------


def measure_first_token(spec, adapter) -> tuple[float, float]:
    from serving.engine import GenerationParams, ModelPool, PaneSpec, generate

    params = GenerationParams(max_new_tokens=4, temperature=0)
    pool = ModelPool(10**10)
    cold = generate(pool, [PaneSpec(spec, adapter)], messages=PROMPT, params=params)[0]
    warm = [
        generate(pool, [PaneSpec(spec, adapter)], messages=PROMPT, params=params)[0]
        for _ in range(10)
    ]
    return statistics.median(r.first_token_seconds for r in warm) * 1000, (
        cold.first_token_seconds * 1000
    )


# --- 3. streaming overhead ------------------------------------------------------------------------


def ignore_end_of_turn(loaded) -> None:
    """Both sides generate exactly the requested count: no eos, no end of turn."""
    loaded.stop_token_ids = []
    loaded.model.get_base_model().generation_config.eos_token_id = None


def engine_run(pool, spec, adapter, new_tokens: int) -> float:
    from serving.engine import GenerationParams, PaneSpec, generate

    sent = []
    cancelled = threading.Event()

    def on_progress(texts):
        # What the worker does with each step: serialise every pane's text.
        sent.append(len(json.dumps({"texts": texts})))

    params = GenerationParams(max_new_tokens=new_tokens, temperature=0)
    started = time.perf_counter()
    [result] = generate(
        pool, [PaneSpec(spec, adapter)], messages=PROMPT, params=params,
        on_progress=on_progress, should_stop=cancelled.is_set,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert result.completion_tokens == new_tokens, result
    assert len(sent) > new_tokens // 2, len(sent)
    return new_tokens / elapsed


def raw_run(loaded, adapter, prompt_ids: list[int], new_tokens: int) -> float:
    import torch

    input_ids = torch.tensor([prompt_ids])
    loaded.model.set_adapter(adapter.name)
    started = time.perf_counter()
    with torch.inference_mode():
        output = loaded.model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
            max_new_tokens=new_tokens, do_sample=False,
            pad_token_id=loaded.tokenizer.pad_token_id,
        )  # fmt: skip
    elapsed = time.perf_counter() - started
    assert output.shape[1] - input_ids.shape[1] == new_tokens
    return new_tokens / elapsed


def measure_streaming(pool, spec, adapter, new_tokens: int, rounds: int) -> dict:
    from serving.engine.generate import encode_request

    loaded, _ = pool.prepare(spec, [adapter])
    ignore_end_of_turn(loaded)
    prompt_ids = encode_request(loaded, PROMPT, None)
    engine_run(pool, spec, adapter, 8)  # warm-up
    engine, raw = [], []
    for index in range(rounds):
        raw.append(raw_run(loaded, adapter, prompt_ids, new_tokens))
        engine.append(engine_run(pool, spec, adapter, new_tokens))
        print(f"  round {index + 1}: raw {raw[-1]:,.1f} tok/s, engine {engine[-1]:,.1f} tok/s")
    return {"raw": max(raw), "engine": max(engine)}


# --- 4. memory ------------------------------------------------------------------------------------


def rss_child(model: Path, adapters_folder: Path, count: int) -> None:
    """In a fresh process: one base, `count` adapters, one generate; print peak RSS."""
    from serving.engine import GenerationParams, ModelPool, ModelSpec, PaneSpec, generate

    paths = sorted(adapters_folder.glob("adapter-*"), key=lambda p: int(p.name.split("-")[1]))
    adapters = adapter_specs(paths[:count])
    spec = ModelSpec(str(model), "causal-lm")
    pool = ModelPool(10**10)
    pool.prepare(spec, adapters)
    params = GenerationParams(max_new_tokens=32, temperature=0)
    [result] = generate(pool, [PaneSpec(spec, adapters[0])], messages=PROMPT, params=params)
    assert result.error is None, result.error
    [entry] = pool.stats()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"rss": peak_kib * 1024, "pool_bytes": entry["bytes"]}))


def measure_rss(model: Path, adapters_folder: Path, count: int) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(count), "--model", str(model),
         "--adapters", str(adapters_folder)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(output.stdout.strip().splitlines()[-1])


# --- 5. batched panes -----------------------------------------------------------------------------


def measure_batching(pool, spec, adapters) -> tuple[float, float]:
    from serving.engine import GenerationParams, PaneSpec, generate

    panes = [PaneSpec(spec)] + [PaneSpec(spec, adapter) for adapter in adapters[:3]]
    params = GenerationParams(max_new_tokens=32, temperature=0)
    generate(pool, panes, messages=PROMPT, params=params)  # warm-up, adapters attached
    started = time.perf_counter()
    generate(pool, panes, messages=PROMPT, params=params)
    batched = time.perf_counter() - started
    started = time.perf_counter()
    for pane in panes:
        generate(pool, [pane], messages=PROMPT, params=params)
    return batched, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--adapters", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.rss_child:
        rss_child(args.model, args.adapters, args.rss_child)
        return 0

    from serving.engine import ModelPool, ModelSpec

    model = tiny_model()
    spec = ModelSpec(str(model), "causal-lm")
    with tempfile.TemporaryDirectory(prefix="tailor-bench-serving-") as scratch:
        folder = Path(scratch)
        adapters = adapter_specs(make_adapters(model, folder, 10))
        pool = ModelPool(10**10)
        print("1. Adapter switch (set_adapter), median of 400")
        switch_ms = measure_switch(pool, spec, adapters)
        print("2. Time to first token, one fine-tuned pane")
        warm_ms, cold_ms = measure_first_token(spec, adapters[0])
        print("5. Four panes batched vs one after another (32 new tokens)")
        batched, serial = measure_batching(pool, spec, adapters)
        print(f"3. Streaming overhead: {args.new_tokens} new tokens, greedy, eos ignored")
        streaming = measure_streaming(pool, spec, adapters[1], args.new_tokens, args.rounds)
        print("4. Peak RSS, fresh process each: 1 adapter, then 10")
        one = measure_rss(model, folder, 1)
        ten = measure_rss(model, folder, 10)

    streaming_ratio = streaming["engine"] / streaming["raw"]
    rss_ratio = ten["rss"] / one["rss"]
    mib = 1024 * 1024
    rows = [
        ("adapter switch", f"{switch_ms:.2f} ms", ""),
        ("first token (warm)", f"{warm_ms:.1f} ms", ""),
        ("first token (cold pool)", f"{cold_ms:.0f} ms", ""),
        ("raw generate tokens/s", f"{streaming['raw']:,.1f}", ""),
        ("engine tokens/s", f"{streaming['engine']:,.1f}", ""),
        ("engine / raw", f"{streaming_ratio:.3f}", f">= {TARGET_STREAMING_RATIO}"),
        ("peak RSS, 1 adapter", f"{one['rss'] / mib:,.0f} MiB", ""),
        ("peak RSS, 10 adapters", f"{ten['rss'] / mib:,.0f} MiB", ""),
        ("10 / 1 adapters RSS", f"{rss_ratio:.3f}", f"<= {TARGET_RSS_RATIO}"),
        ("pool bytes, 1 adapter", f"{one['pool_bytes'] / mib:.1f} MiB", ""),
        ("pool bytes, 10 adapters", f"{ten['pool_bytes'] / mib:.1f} MiB", ""),
        ("4 panes batched", f"{batched:.2f} s", ""),
        ("4 panes one by one", f"{serial:.2f} s", f"({serial / batched:.1f}x)"),
    ]
    print()
    for name, value, target in rows:
        print(f"{name:<26}{value:>20}   {target}")
    met = streaming_ratio >= TARGET_STREAMING_RATIO and rss_ratio <= TARGET_RSS_RATIO
    print("all targets met" if met else "a target was missed")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
