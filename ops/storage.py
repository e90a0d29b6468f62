"""What the media folder holds, by kind and by user, measured by a periodic task.

Walking every file takes seconds on a busy studio, so pages never do it:
beat sends `ops.survey_storage` to the maintenance queue every
TAILOR_STORAGE_SURVEY_SECONDS, and the survey is kept in Redis with the time
it was taken. Only the free space is read live (one statvfs call).

The media folder's layout (the models' `folder` properties):
`datasets/<id>/…` and `jobs/<id>/` holding `data/` (the job's copy of its
rows), `attempt-<n>/checkpoints/…`, `attempt-<n>/adapter…`, `export-<n>/`
and `merged.zip`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import redis
from django.conf import settings
from django.contrib.auth import get_user_model

from ops import workers

SURVEY_KEY = "tailor:ops:storage"
KINDS = ("datasets", "checkpoints", "adapters", "exports", "other")
TOP_USERS = 10


def kind_of(relative: tuple[str, ...]) -> str:
    """The kind of a file, from its path under the media folder."""
    if len(relative) < 3 or relative[0] not in ("datasets", "jobs"):
        return "other"
    if relative[0] == "datasets":
        return "datasets"
    inside = relative[2:]
    if inside[0] == "data":
        return "datasets"
    if inside[0].startswith("export-") or inside[0] == "merged.zip":
        return "exports"
    if inside[0].startswith("attempt-"):
        return "checkpoints" if "checkpoints" in inside[1:] else "adapters"
    return "other"


def _files(root: Path):
    """(path parts under root, bytes) of every regular file; links are not followed."""
    stack = [(root, ())]
    while stack:
        folder, parts = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:  # removed meanwhile, or unreadable
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, (*parts, entry.name)))
                elif entry.is_file(follow_symlinks=False):
                    yield (*parts, entry.name), entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue


def survey(root: Path | None = None) -> dict:
    """Walk the media folder: bytes by kind, the biggest users, file count."""
    from datasets_app.models import Dataset
    from jobs.models import FineTuneJob

    root = Path(root or settings.MEDIA_ROOT)
    started = time.monotonic()
    by_kind: Counter = Counter(dict.fromkeys(KINDS, 0))
    by_folder: Counter = Counter()  # ("datasets" | "jobs", id) -> bytes
    files = 0
    for relative, size in _files(root):
        files += 1
        by_kind[kind_of(relative)] += size
        if len(relative) >= 3 and relative[0] in ("datasets", "jobs"):
            by_folder[(relative[0], relative[1])] += size
    owners = {}
    for top, model in (("datasets", Dataset), ("jobs", FineTuneJob)):
        ids = [_uuid(name) for (kind, name) in by_folder if kind == top]
        ids = [pk for pk in ids if pk is not None]
        for start in range(0, len(ids), 500):  # SQLite's bound on a query's variables
            chunk = ids[start : start + 500]
            for pk, owner in model.objects.filter(pk__in=chunk).values_list("pk", "owner_id"):
                owners[(top, str(pk))] = owner
    per_user: Counter = Counter()
    for (top, name), size in by_folder.items():
        per_user[owners.get((top, name))] += size
    names = dict(
        get_user_model()
        .objects.filter(pk__in=[pk for pk in per_user if pk is not None])
        .values_list("pk", "username")
    )
    users = [
        {"username": names.get(pk, "(no owner)"), "bytes": size}
        for pk, size in per_user.most_common(TOP_USERS)
        if size
    ]
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 2),
        "files": files,
        "total": sum(by_kind.values()),
        "by_kind": {kind: by_kind[kind] for kind in KINDS},
        "users": users,
    }


def _uuid(name: str):
    try:
        return uuid.UUID(name)
    except ValueError:
        return None


def measure_and_store() -> dict:
    """What the periodic task runs: survey, then keep the result."""
    result = survey()
    workers.client().set(SURVEY_KEY, json.dumps(result))
    return result


def last_survey() -> dict | None:
    """The latest survey, or None when none was taken yet (or Redis is down)."""
    try:
        raw = workers.client().get(SURVEY_KEY)
    except redis.RedisError:
        return None
    return json.loads(raw) if raw else None


def disk() -> dict:
    """The media folder's disk, read live (one statvfs call): total and free bytes."""
    root = Path(settings.MEDIA_ROOT)
    while not root.exists() and root != root.parent:
        root = root.parent
    usage = shutil.disk_usage(root)
    return {"total": usage.total, "free": usage.free}
