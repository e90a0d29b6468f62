"""Reading back what a W&B run logged offline, for the tracker tests.

wandb 0.31 keeps no Python reader of its run files (its Go core writes
them), so this reads one as wandb's own format defines it: the header
":W&B" + magic + version (7 bytes), then 32 KiB blocks of records, each a
7-byte header (CRC-32, length, type: full, first, middle or last) and a
piece of a `wandb_internal_pb2.Record` protobuf, wandb's own message type.
"""

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class Artifact:
    name: str
    type: str
    aliases: list[str]
    files: set[str]


@dataclass
class WandbRun:
    project: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)  # one row per wandb.log
    artifacts: list[Artifact] = field(default_factory=list)
    exit_code: int | None = None


def _records(path: Path):
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    position, pending = HEADER, b""
    while position + HEADER <= len(data):
        left = BLOCK - position % BLOCK
        _, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        if left < HEADER or (length, kind) == (0, 0):  # the block's padding
            position += left
            continue
        pending += data[position + HEADER : position + HEADER + length]
        position += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def _read_config(run: WandbRun, record) -> None:
    run.config.update({_key(item): json.loads(item.value_json) for item in record.update})


def wandb_run_records(folder: Path) -> WandbRun:
    """The one offline run under `folder` (a run's `dir`), as it was logged."""
    [path] = Path(folder).glob("wandb/offline-run-*/run-*.wandb")
    run = WandbRun()
    for record in _records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.project, run.name = record.run.project, record.run.display_name
            run.tags = list(record.run.tags)
            _read_config(run, record.run.config)  # wandb.init's config
        elif kind == "config":
            _read_config(run, record.config)  # the integration's wandb.config.update
        elif kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "artifact":
            a = record.artifact
            files = {entry.path for entry in a.manifest.contents}
            run.artifacts.append(Artifact(a.name, a.type, list(a.aliases), files))
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run
