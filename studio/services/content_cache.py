"""One machine's copies of stored objects, keyed by their content.

The contract. With object storage (studio/services/object_store.py) each
machine keeps what it fetched or pushed under `MEDIA_ROOT/.content/<id>`,
where `<id>` is the object's sha256 (kept in the object's metadata on push).
A cache entry is a hard link to the file at the object's own path, so it
costs no space while that file is there, and a second object with the same
content (a second job's copy of one dataset's training file) is placed by a
link: no download. `prune()` deletes the entries no path links to any more.

The trade-offs. A file rewritten in place would change its cache entry too
(they are one inode), so an entry is trusted only while its size, mtime and
inode are those recorded when it was made; writers in Tailor replace files
by rename, which leaves the entry intact. Where the file system has no hard
links, entries are copies: correct, at twice the space until a prune.
Processes racing to make one entry may each replace it; the loser's record
no longer matches, which reads as a miss (one more download), never as
wrong content.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings

CACHE_FOLDER = ".content"
CHUNK_BYTES = 1024 * 1024


def folder() -> Path:
    return Path(settings.MEDIA_ROOT) / CACHE_FOLDER


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _entry(content_id: str) -> Path:
    return folder() / content_id


def _record(content_id: str) -> Path:
    return folder() / f"{content_id}.stat"


def _fingerprint(stat: os.stat_result) -> dict:
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ino": stat.st_ino}


def _valid_entry(content_id: str) -> os.stat_result | None:
    """The entry's stat when it is still the content it was made with."""
    try:
        stat = _entry(content_id).stat()
        recorded = json.loads(_record(content_id).read_text())
    except (OSError, ValueError):
        return None
    return stat if recorded == _fingerprint(stat) else None


def holds(path: Path, content_id: str) -> bool:
    """Whether `path` is, right now, the cached content `content_id`."""
    stat = _valid_entry(content_id)
    try:
        return stat is not None and os.stat(path).st_ino == stat.st_ino
    except OSError:
        return False


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def _temporary_beside(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    os.unlink(name)
    return Path(name)


def adopt(path: Path, content_id: str) -> None:
    """Make the complete file `path` (whose content is `content_id`) the
    cache's entry for that content, unless a valid one is there already."""
    if _valid_entry(content_id) is not None:
        return
    folder().mkdir(parents=True, exist_ok=True)
    entry = _entry(content_id)
    temporary = _temporary_beside(entry)
    try:
        _link_or_copy(path, temporary)
        os.replace(temporary, entry)
    finally:
        temporary.unlink(missing_ok=True)
    record = _record(content_id)
    staged = _temporary_beside(record)
    staged.write_text(json.dumps(_fingerprint(entry.stat())))
    os.replace(staged, record)


def place(content_id: str, dest: Path) -> bool:
    """Put the cached content `content_id` at `dest` (atomically, by a link
    under a temporary name and a rename). False when the cache lacks it."""
    if _valid_entry(content_id) is None:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_beside(dest)
    try:
        _link_or_copy(_entry(content_id), temporary)
        os.replace(temporary, dest)
    except FileNotFoundError:
        return False  # pruned meanwhile by another process
    finally:
        temporary.unlink(missing_ok=True)
    return True


def prune() -> int:
    """Delete the entries that no file outside the cache links to; returns
    how many. (Where entries are copies, that is every entry.)"""
    removed = 0
    try:
        entries = list(folder().iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.suffix in {".stat", ".partial"}:
            continue
        try:
            if entry.stat().st_nlink > 1:
                continue
            entry.unlink()
        except FileNotFoundError:
            continue
        _record(entry.name).unlink(missing_ok=True)
        removed += 1
    return removed
