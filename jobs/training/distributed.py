"""One job on several devices of one machine: data-parallel training.

Contract: `run_on_devices(devices, config, paths, ...)` does what
`loop.run_training` does, with `devices` processes training together, each
on its own share of every batch (PyTorch DDP, as the HF Trainer runs it under
`torchrun` or `accelerate launch`):

- This process is rank 0, the run the worker knows: it alone reports events,
  writes checkpoints (the Trainer saves on the main process) and the adapter,
  and its lease, cancel and fencing are the job's.
- Ranks 1..n-1 are child processes (`python -m jobs.training.rank SPEC`) that
  read the same job from a JSON file and their rank from the variables
  torch.distributed reads (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
  MASTER_PORT). They compute and exchange gradients and report nothing.
- One decision to stop and to save: after every optimizer step the ranks
  agree (an all-reduce) on rank 0's `should_stop()` and, before each save,
  on its `may_write()`. A cancel or a lost lease then ends every rank at the
  same step, rather than leaving one blocked in a collective for ever.
- However rank 0 ends (a result, a failure, an exception), the other ranks
  are ended before it returns; a rank that died makes the run fail with a
  sentence that names it.
- Backend: NCCL on CUDA, one GPU per rank (cuda:LOCAL_RANK); gloo on CPU,
  where the same code runs as processes. CPU is what the tests can run: it
  shows the ranks agree, share the data and write one adapter, not the
  speed-up, which needs the GPUs.

The trade-off: rank 0 stays the worker's own process (no launcher between the
worker and the run), so events, leases and cancels work unchanged; the cost
is that a rank's crash is seen by rank 0 only as a failed collective.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from .contract import RunPaths, TrainingFailure

DIST_VARIABLES = (
    "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TAILOR_RANK_PARENT",
)  # fmt: skip
# How long an ended rank may take to leave before it is killed.
RANK_GRACE_SECONDS = 10


def cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_devices(devices: int, available: int | None = None) -> None:
    """A job that asks for more GPUs than this machine has (`available`, by
    default what torch sees) fails at once, saying so; on a machine without
    GPUs the ranks are processes."""
    available = cuda_devices() if available is None else available
    if available and devices > available:
        raise TrainingFailure(
            "training",
            f"This job asks for {devices} devices (training.devices) and this worker has "
            f"{available} GPU{'s' if available != 1 else ''}. Ask for {available} or fewer, or "
            "run it where a machine has enough.",
        )


def spec_of(config, paths: RunPaths, *, task: str, resume_from: Path | None) -> dict:
    """What a rank needs to build the same run: plain JSON."""
    return {
        "config": config.to_document(),
        "task": task,
        "paths": {
            "model_source": paths.model_source,
            "train_file": str(paths.train_file),
            "validation_file": str(paths.validation_file) if paths.validation_file else None,
            "output_dir": str(paths.output_dir),
            "start_adapters": [str(folder) for folder in paths.start_adapters],
        },
        "resume_from": str(resume_from) if resume_from else None,
    }


def paths_of(spec: dict) -> RunPaths:
    given = spec["paths"]
    return RunPaths(
        model_source=given["model_source"],
        train_file=Path(given["train_file"]),
        validation_file=Path(given["validation_file"]) if given["validation_file"] else None,
        output_dir=Path(given["output_dir"]),
        start_adapters=tuple(Path(folder) for folder in given.get("start_adapters", ())),
    )


def agreement():
    """(stop, write): the ranks' common answer to rank 0's questions, one
    all-reduce each. Every rank must ask at the same points (the Trainer's
    callbacks do: after each optimizer step, before each save)."""
    import torch
    import torch.distributed as dist

    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")  # fmt: skip

    def any_of(local: bool) -> bool:
        flag = torch.tensor([1 if local else 0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def all_of(local: bool) -> bool:
        flag = torch.tensor([1 if local else 0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    return any_of, all_of


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reset_accelerate() -> None:
    """Accelerate keeps the process's distributed state in a singleton: a
    process that trained alone before must forget it to join a group."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


class Ranks:
    """The child ranks: started, watched, and ended whatever happens."""

    def __init__(self, devices: int, spec: dict, port: int):
        self.folder = Path(tempfile.mkdtemp(prefix="tailor-ranks-"))
        spec_file = self.folder / "spec.json"
        spec_file.write_text(json.dumps(spec))
        self.children: list[subprocess.Popen] = []
        self.died: tuple[int, int] | None = None  # (rank, exit status) of the first to fail
        for rank in range(1, devices):
            env = dict(os.environ, **_rank_env(rank, devices, port))
            with open(self.folder / f"rank-{rank}.log", "wb") as log:  # the child keeps its copy
                child = subprocess.Popen(
                    [sys.executable, "-m", "jobs.training.rank", str(spec_file)],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            self.children.append(child)
        self.watcher = threading.Thread(target=self._watch, name="ranks", daemon=True)
        self.stopping = threading.Event()
        self.watcher.start()

    def _watch(self) -> None:
        while not self.stopping.wait(0.5):
            self.check()

    def check(self) -> tuple[int, int] | None:
        """The first rank seen to fail: (rank, exit status), else None."""
        for rank, child in enumerate(self.children, start=1):
            code = child.poll()
            if code not in (None, 0) and self.died is None:
                self.died = (rank, code)
        return self.died

    def log_tail(self, rank: int) -> str:
        path = self.folder / f"rank-{rank}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def end(self) -> None:
        self.stopping.set()
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(RANK_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def die_with_parent(parent: int) -> None:
    """Called first thing in a rank's process: the kernel kills it when rank
    0's process dies (a stalled run's worker ends with os._exit), so that no
    rank outlives it holding a GPU until its collective times out. Set in the
    child rather than by a preexec_fn, which is unsafe in a process with
    threads (the worker's lease keeper)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # rank 0 died before the line above
        os._exit(1)


def _rank_env(rank: int, devices: int, port: int) -> dict:
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(devices),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "TAILOR_RANK_PARENT": str(os.getpid()),
    }


def run_on_devices(devices: int, config, paths: RunPaths, *, task: str, on_event, should_stop,
                   resume_from: Path | None = None, may_write=None,
                   tracker_settings=None):  # fmt: skip
    """`loop.run_training` on `devices` processes, this one rank 0
    (`run_training` comes here by itself when `training.devices` > 1); rank 0
    alone reports to the trackers."""
    import torch.distributed as dist

    from .loop import run_training

    check_devices(devices)
    port = _free_port()
    saved = {name: os.environ.get(name) for name in DIST_VARIABLES}
    os.environ.update(_rank_env(0, devices, port))
    _reset_accelerate()
    ranks = Ranks(devices, spec_of(config, paths, task=task, resume_from=resume_from), port)
    agreed: list = []

    def stop() -> bool:
        if not agreed:
            agreed.extend(agreement())
        return agreed[0](should_stop())

    def write() -> bool:
        if not agreed:
            agreed.extend(agreement())
        return agreed[1](may_write() if may_write is not None else True)

    on_event({"kind": "log", "message": f"Training on {devices} devices, data parallel"})
    try:
        return run_training(
            config, paths, task=task, on_event=on_event, should_stop=stop,
            resume_from=resume_from, may_write=write, tracker_settings=tracker_settings,
        )  # fmt: skip
    except TrainingFailure:
        raise  # rank 0's own sentence (every rank meets the same data and model)
    except Exception as exc:
        # A peer's death reaches rank 0 as a failed collective, maybe
        # before the rank's exit status does: wait a moment for it.
        for _ in range(20):
            if ranks.check() is not None:
                break
            threading.Event().wait(0.1)
        if ranks.died is not None:
            rank, code = ranks.died
            raise TrainingFailure(
                "training",
                f"Device rank {rank} of {devices} stopped (exit status {code}), so the run "
                "could not go on.",
                detail=ranks.log_tail(rank),
            ) from exc
        raise
    finally:
        ranks.end()
        if dist.is_initialized():
            dist.destroy_process_group()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _reset_accelerate()
