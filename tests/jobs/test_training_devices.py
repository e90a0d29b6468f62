"""One job on several devices (jobs/training/distributed.py), as far as a
CPU allows: the ranks are processes joined by gloo instead of GPUs joined by
NCCL. What is shown here holds on GPUs too (the same Trainer, the same
agreement); the speed-up needs a machine with several GPUs to measure.

Real training of the tiny demo model, rank 0 in this process.
"""

import json
import os
import signal

import psutil
import pytest

from jobs.training import RunPaths, TrainingFailure, run_training
from tests.jobs.test_training_engine import Recorder, tiny_config
from tests.samples import routing_rows, write_jsonl

pytestmark = pytest.mark.training

ROWS, BATCH = 32, 4


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("rows") / "train.jsonl", routing_rows("train", ROWS))


def _config(**training):
    return tiny_config("lora", **{"max_steps": 0, "epochs": 1, "batch_size": BATCH,
                                  "logging_steps": 1, **training})  # fmt: skip


def _child_ranks() -> list[psutil.Process]:
    return [
        child for child in psutil.Process().children(recursive=True)
        if "jobs.training.rank" in " ".join(child.cmdline())
    ]  # fmt: skip


def test_two_ranks_share_each_epoch_stop_together_and_resume_to_one_adapter(
    demo_models, rows, tmp_path
):
    config = _config(save_every=1, devices=2)
    paths = RunPaths(str(demo_models.tiny_path()), rows, None, tmp_path / "job")
    stopper = Recorder(stop_after=2)

    # run_training makes this process rank 0 of two, as the worker's call does.
    stopped = run_training(config, paths, task="causal-lm", on_event=stopper,
                           should_stop=stopper.should_stop)  # fmt: skip

    # Rank 0 asked to stop after step 2: every rank stopped there, together.
    assert stopper.kinds("log")[0]["message"] == "Training on 2 devices, data parallel"
    assert stopped.stopped and stopped.final_step == 2
    assert stopped.adapter_dir is None
    started = stopper.kinds("started")[0]
    # 30 usable rows (2 fill the length), 4 a batch, 2 devices: 4 steps, not 8.
    assert started["total_steps"] == 4
    checkpoint = paths.checkpoints_dir / "checkpoint-2"
    # Both ranks' random states are in it: two processes trained.
    assert {p.name for p in checkpoint.glob("rng_state_*.pth")} == {
        "rng_state_0.pth",
        "rng_state_1.pth",
    }
    assert _child_ranks() == []  # the other rank ended with the run

    finisher = Recorder()
    done = run_training(config, paths, task="causal-lm", on_event=finisher,
                        should_stop=finisher.should_stop, resume_from=checkpoint)  # fmt: skip

    assert not done.stopped and done.final_step == 4
    steps = [event["step"] for event in finisher.kinds("metric")]
    assert steps == [3, 4]  # reported once each, by rank 0 alone
    assert finisher.kinds("started")[0]["resumed_from_step"] == 2
    adapter = json.loads((done.adapter_dir / "adapter_config.json").read_text())
    assert adapter["r"] == config.lora.rank
    assert _child_ranks() == []


def test_a_rank_that_dies_fails_the_run_with_a_sentence_naming_it(demo_models, rows, tmp_path):
    config = _config(devices=2, epochs=4)
    paths = RunPaths(str(demo_models.tiny_path()), rows, None, tmp_path / "job")
    recorder = Recorder()

    def kill_the_other_rank(event):
        recorder(event)
        if event["kind"] == "metric" and event["step"] == 1:
            for child in _child_ranks():
                os.kill(child.pid, signal.SIGKILL)

    with pytest.raises(TrainingFailure) as failure:
        run_training(config, paths, task="causal-lm", on_event=kill_the_other_rank,
                     should_stop=recorder.should_stop)  # fmt: skip

    assert failure.value.code == "training"
    assert failure.value.message.startswith("Device rank 1 of 2 stopped (exit status -9)")
    assert not paths.adapter_dir.exists()
    assert _child_ranks() == []


def test_a_job_for_more_gpus_than_the_machine_has_is_refused_before_it_starts():
    from jobs.training.distributed import check_devices

    with pytest.raises(TrainingFailure) as failure:
        check_devices(4, available=2)
    assert failure.value.message.startswith(
        "This job asks for 4 devices (training.devices) and this worker has 2 GPUs."
    )
    check_devices(2, available=2)
    check_devices(4, available=0)  # no GPU: the ranks are processes


def test_a_rank_dies_with_the_process_of_rank_0(tmp_path):
    """A stalled run's worker ends with os._exit: its ranks must not outlive it
    (on GPUs they would hold memory until their collective timed out)."""
    import subprocess
    import sys
    import time

    from tests.samples import ROOT

    rank = (
        "import os, time; from jobs.training.distributed import die_with_parent; "
        "die_with_parent(int(os.environ['PARENT'])); print(os.getpid(), flush=True); time.sleep(120)"
    )
    parent = (
        "import os, subprocess, sys, time; "
        f"subprocess.Popen([sys.executable, '-c', {rank!r}], env=dict(os.environ, "
        "PARENT=str(os.getpid())), start_new_session=True); time.sleep(120)"
    )
    rank_0 = subprocess.Popen(
        [sys.executable, "-c", parent], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    child = int(rank_0.stdout.readline())
    assert psutil.pid_exists(child)
    rank_0.kill()
    rank_0.wait()
    deadline = time.monotonic() + 10
    while psutil.pid_exists(child) and psutil.Process(child).status() != "zombie":
        assert time.monotonic() < deadline, "the rank outlived rank 0"
        time.sleep(0.05)
