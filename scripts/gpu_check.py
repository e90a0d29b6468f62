"""`make gpu-check`: a QLoRA job on a CUDA machine, with its speed and memory.

Generates a ~100M-parameter Llama (tailor-tiny's tokenizer and chat template,
14 layers of width 768), trains a QLoRA adapter on the bundled routing sample
through Tailor's own training engine (bf16 compute where the GPU has it), and
prints tokens/s and peak GPU memory. Nothing is downloaded.

    .venv/bin/python scripts/gpu_check.py [--steps 60] [--batch-size 16]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

# ~99M parameters: 14 × (4·768² + 3·768·2048) + a small vocabulary.
ARCHITECTURE = {
    "hidden_size": 768,
    "intermediate_size": 2048,
    "num_hidden_layers": 14,
    "num_attention_heads": 12,
    "num_key_value_heads": 12,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": True,
}


def build_model(dest: Path) -> int:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from jobs.demo_models import _train_tokenizer

    tokenizer = _train_tokenizer()
    vocab = -(-len(tokenizer) // 64) * 64
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **ARCHITECTURE,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return sum(p.numel() for p in model.parameters())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--method", default="qlora", choices=["qlora", "lora"])
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(
            "gpu-check needs a CUDA GPU and a CUDA build of torch; this machine has "
            f"torch {torch.__version__} and no CUDA device.",
            file=sys.stderr,
        )
        return 2

    import django

    django.setup()
    from jobs import training
    from jobs.config import JobConfig

    device = torch.cuda.get_device_name(0)
    sample = ROOT / "datasets_app" / "samples" / "support-routing"
    with tempfile.TemporaryDirectory(prefix="tailor-gpu-check-") as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        parameters = build_model(scratch / "model")
        print(f"model: {parameters / 1e6:.1f}M parameters, built in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip

        config = JobConfig()
        config.model.method = args.method
        config.training.max_steps = args.steps
        config.training.batch_size = args.batch_size
        config.training.max_seq_length = 128
        config.training.learning_rate = 1e-3
        config.training.logging_steps = 1
        config.training.save_every = 0
        metrics = []

        def on_event(event):
            if event["kind"] == "metric" and event.get("train_loss") is not None:
                metrics.append(event)

        torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        result = training.run_training(
            config,
            training.RunPaths(
                model_source=str(scratch / "model"),
                train_file=sample / "train.jsonl",
                validation_file=sample / "validation.jsonl",
                output_dir=scratch / "job",
            ),
            task="causal-lm",
            on_event=on_event,
            should_stop=lambda: False,
        )
        wall = time.perf_counter() - started
        peak = torch.cuda.max_memory_allocated()

    # Skip the first quarter: CUDA kernels warm up and the allocator grows.
    steady = [
        m["tokens_per_second"] for m in metrics[len(metrics) // 4 :] if m.get("tokens_per_second")
    ]
    print(f"device: {device}, torch {torch.__version__}, compute {training.compute_dtype_name()}")
    print(
        f"method: {args.method}, steps: {result.final_step}, batch {args.batch_size}, max_len 128"
    )
    print(f"loss: {metrics[0]['train_loss']:.3f} -> {metrics[-1]['train_loss']:.3f}")
    print(f"tokens/s (median over steady steps): {statistics.median(steady):,.0f}")
    print(f"trained tokens: {result.trained_tokens:,} in {wall:.1f} s (load and save included)")
    print(f"peak GPU memory: {peak / 2**20:,.0f} MiB")
    ok = result.final_step == args.steps and metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    print("gpu-check:", "OK" if ok else "FAILED (the loss did not fall)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
