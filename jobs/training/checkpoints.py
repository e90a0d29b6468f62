"""Checkpoints on disk: which are complete, and the newest of a run."""

from __future__ import annotations

import json
from pathlib import Path

CHECKPOINT_PREFIX = "checkpoint-"
# The HF Trainer writes trainer_state.json last: a checkpoint with it is complete.
CHECKPOINT_COMPLETE_MARKER = "trainer_state.json"


def checkpoint_is_complete(path) -> bool:
    """Whether a checkpoint folder was written to the end: the trainer writes
    trainer_state.json last, and a file cut short (a crash, a full disk) does
    not parse."""
    try:
        state = json.loads((Path(path) / CHECKPOINT_COMPLETE_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "global_step" in state


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint under output_dir/checkpoints, or None."""
    folder = Path(output_dir) / "checkpoints"
    if not folder.is_dir():
        return None
    complete = [
        path
        for path in folder.glob(f"{CHECKPOINT_PREFIX}*")
        if path.name.removeprefix(CHECKPOINT_PREFIX).isdigit() and checkpoint_is_complete(path)
    ]
    return max(complete, key=lambda p: int(p.name.removeprefix(CHECKPOINT_PREFIX)), default=None)
