"""Folders that appear whole: a model, an adapter or an export is written
beside its final place and renamed in, so a reader never sees half of one."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_folder(dest: Path) -> Iterator[Path]:
    """Yield an empty staging folder beside `dest`; when the block ends without
    an error it replaces `dest` whole, otherwise it is removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        yield staging
        staging.chmod(0o755)  # mkdtemp makes it private; other processes read it
        if dest.exists():
            old = dest.with_name(f".{dest.name}-old-{time.time_ns()}")
            dest.rename(old)
            staging.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
