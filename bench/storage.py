"""Benchmark: what object storage costs a training job on another machine.

    .venv/bin/python bench/storage.py [--steps 60] [--save-every 20] [--rows 2000]

In one process, against its own Redis, a fresh SQLite database and a real
S3-compatible server on loopback (moto's server, as the tests use):

1. Baseline: a LoRA job on tailor-tiny with the filesystem layout, on the
   machine that holds the files (nothing fetched, nothing uploaded).
2. Another machine: the same job with TAILOR_STORAGE=s3 on a worker whose
   MEDIA_ROOT starts empty. The job's log says what it fetched before
   training and what it uploaded (each checkpoint as it is saved, then the
   adapter and its zip), with the wall time of each and of the training
   (jobs/services/worker_files.py); printed here against the training time.
3. The same machine again: a second job on the same dataset, whose data the
   content-keyed cache already holds (no bytes downloaded).

The transfer figures are loopback figures: a real store adds the network's
bandwidth and latency; the bytes moved are what they are anywhere.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TARGET_SHARE = 0.10  # fetch + upload at most a tenth of the training time


def chat_rows(path: Path, rows: int) -> Path:
    """`rows` support tickets of one to three sentences and their team."""
    teams = ["billing", "facilities", "it", "shipping"]
    with path.open("w") as f:
        for i in range(rows):
            ask = f"Ticket {i}: " + "the order arrived late and the box was open. " * (1 + i % 3)
            answer = teams[i % len(teams)]
            turns = [{"role": "user", "content": ask}, {"role": "assistant", "content": answer}]
            f.write(json.dumps({"messages": turns}) + "\n")
    return path


def run(owner, dataset, training: dict, machine: Path) -> tuple[float, dict]:
    """One job, created on the web machine, run through the real runner on
    `machine` (its own MEDIA_ROOT): its wall time and its storage notes."""
    from django.conf import settings
    from train_overhead import queued_job

    from jobs import worker
    from jobs.models import FineTuneJob

    web = settings.MEDIA_ROOT
    job = queued_job(owner, dataset, training)
    settings.MEDIA_ROOT = str(machine)
    machine.mkdir(exist_ok=True)
    try:
        started = time.monotonic()
        outcome = worker.run_job(str(job.pk), "bench")
        wall = time.monotonic() - started
    finally:
        settings.MEDIA_ROOT = web
    job = FineTuneJob.objects.get(pk=job.pk)
    assert outcome == "succeeded", (outcome, job.error_message)
    notes = {
        event.data["storage"]["direction"]: event.data["storage"]
        for event in job.events.filter(data__has_key="storage")
    }
    return wall, notes


def megabytes(count: int) -> str:
    return f"{count / 1024**2:,.2f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--save-every", type=int, default=20)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    from tests.s3 import S3Server

    server = S3Server().start()
    bucket = "tailor-bench"
    server.client().create_bucket(Bucket=bucket)
    os.environ.update(server.env(bucket), TAILOR_STORAGE="filesystem")
    with tempfile.TemporaryDirectory(prefix="tailor-bench-") as scratch:
        scratch = Path(scratch)
        from train_overhead import make_owner, ready_dataset, set_up_studio

        redis = set_up_studio(scratch)
        try:
            from django.conf import settings

            owner = make_owner()
            training = {
                "max_steps": args.steps, "batch_size": 16, "max_seq_length": 64,
                "learning_rate": 3e-3, "seed": 42, "save_every": args.save_every,
            }  # fmt: skip
            print(f"tailor-tiny, LoRA, {args.steps} steps, a checkpoint every {args.save_every}")
            print(f"{args.rows:,} chat rows; the S3 server on loopback at {server.endpoint}")
            settings.TAILOR_STORAGE = "s3"  # the web machine stores the dataset
            dataset = ready_dataset(owner, chat_rows(scratch / "tickets.jsonl", args.rows))
            settings.TAILOR_STORAGE = "filesystem"
            web = Path(settings.MEDIA_ROOT)
            warm, _ = run(owner, dataset, training, web)
            print(f"0. warm-up (loads the libraries), filesystem layout: {warm:.1f} s")
            baseline, _ = run(owner, dataset, training, web)
            print(f"1. filesystem layout: {baseline:.1f} s")
            settings.TAILOR_STORAGE = "s3"
            remote, notes = run(owner, dataset, training, scratch / "gpu-a")
            print(f"2. another machine, s3: {remote:.1f} s")
            cached, again = run(owner, dataset, training, scratch / "gpu-a")
            print(f"3. the same machine again: {cached:.1f} s")
        finally:
            redis.stop()
            server.stop()

    fetched, stored = notes["fetch"], notes["store"]
    trained = stored["training_seconds"]
    share = (fetched["seconds"] + stored["seconds"]) / trained
    rows = [
        ("training (wall, uploads out)", f"{trained:.2f} s", ""),
        ("fetched before training", f"{fetched['seconds']:.2f} s", megabytes(fetched["bytes"])),
        ("uploaded (checkpoints, adapter)",
         f"{stored['seconds']:.2f} s", megabytes(stored["bytes"])),
        ("fetch + upload / training", f"{share:.3f}", f"<= {TARGET_SHARE}"),
        ("job wall time, s3 / filesystem", f"{remote / baseline:.2f}", ""),
        ("second job fetched", f"{again['fetch']['seconds']:.2f} s",
         megabytes(again["fetch"]["bytes"])),
    ]  # fmt: skip
    print()
    for name, value, more in rows:
        print(f"{name:<34}{value:>10}   {more}")
    met = share <= TARGET_SHARE and again["fetch"]["bytes"] == 0
    print(f"\ntargets: fetch + upload <= {TARGET_SHARE:.0%} of training, no second download: "
          f"{'met' if met else 'MISSED'}")  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
