"""What a worker's heartbeat says about its machine, read without touching CUDA.

The heartbeat runs in a Celery worker's parent process, which forks the pool
children that train and generate. CUDA does not survive a fork: a parent
that initialised it (`torch.cuda.is_available()`, as the `studio.worker_facts`
task does in a child) would leave every child unable to use the GPU. So the
versions are read from torch's installed files without importing torch, and
the GPUs from `nvidia-smi` (NVML, no CUDA context), in a subprocess.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import os
import shutil
import socket
import subprocess
from pathlib import Path

NVIDIA_SMI_TIMEOUT_S = 5
GPU_QUERY = "name,memory.used,memory.total"


@functools.cache
def torch_versions() -> dict:
    """torch's version and the CUDA it was built for ("" for a CPU build, None
    when torch is not installed), from its files: importing torch would take
    seconds and hundreds of megabytes in a process that never uses it."""
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return {"torch": None, "cuda": None}
    cuda = ""
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.submodule_search_locations:
        # torch/version.py is generated at build time: plain assignments.
        source = Path(spec.submodule_search_locations[0]) / "version.py"
        namespace: dict = {}
        try:
            exec(compile(source.read_text(), str(source), "exec"), namespace)  # noqa: S102
        except (OSError, SyntaxError, ImportError):
            namespace = {}
        cuda = namespace.get("cuda") or ""
    return {"torch": version.split("+")[0], "cuda": cuda}


def gpus() -> list[dict]:
    """Each GPU's name and memory in bytes (used, total), from nvidia-smi;
    none on a machine without one (or without its driver)."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        out = subprocess.run(
            [binary, f"--query-gpu={GPU_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_nvidia_smi(out)


def parse_nvidia_smi(out: str) -> list[dict]:
    """`nvidia-smi --query-gpu=name,memory.used,memory.total` lines (MiB) as dicts."""
    found = []
    for line in out.splitlines():
        parts = [part.strip() for part in line.rsplit(",", 2)]
        if len(parts) != 3:
            continue
        try:
            used, total = int(float(parts[1])) * 2**20, int(float(parts[2])) * 2**20
        except ValueError:  # "[N/A]" on some virtual GPUs
            continue
        found.append({"name": parts[0], "memory_used": used, "memory_total": total})
    return found


def process_tree_rss(pid: int) -> int:
    """Resident bytes of a process and its children (the pool), from /proc;
    0 where /proc cannot tell."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for member in [pid, *_children(pid)]:
        try:
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def host_memory_total() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def cached_models() -> list[str]:
    """The base models on this machine's disk, by the names the catalog
    uses: Hugging Face ids in the hub's cache (its `models--org--name`
    folders) and the demo models present. A directory listing, no import of
    the hub's client: cheap enough for every beat."""
    from django.conf import settings

    from jobs import demo_models

    found = []
    hub = Path(
        os.environ.get("HF_HUB_CACHE")
        or Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"
    )
    with contextlib.suppress(OSError):  # no cache yet
        found += [
            entry.name.removeprefix("models--").replace("--", "/")
            for entry in hub.iterdir()
            if entry.name.startswith("models--") and entry.is_dir()
        ]
    if (Path(settings.MODELS_ROOT) / demo_models.TINY_NAME / "config.json").exists():
        found.append(demo_models.TINY_NAME)
    if demo_models.minilm_path() is not None:
        found.append(demo_models.MINILM_NAME)
    return sorted(found)


def static_facts() -> dict:
    """What does not change while the worker runs."""
    return {"host": socket.gethostname(), **torch_versions(), "memory_total": host_memory_total()}
