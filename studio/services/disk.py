"""A full disk, recognised wherever Tailor writes and told in plain words.

The contract. `is_disk_full(exc)` says whether an error means the disk (or
the user's quota) is full: an OSError with ENOSPC or EDQUOT anywhere in its
chain, or a library's own error that names that errno (safetensors raises
`SafetensorError: … No space left on device (os error 28)`). torch.save
raises an opaque RuntimeError ("unexpected pos …") that names nothing, so a
caller that writes with torch also asks `nearly_full(folder)` after a failed
write. `check_room(uploads, folder)` is asked before uploaded files are
stored, so a full disk is refused (`DiskFull`, itself an ENOSPC OSError)
before anything is written.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# How the errno reads in Python's own messages and in Rust's (safetensors).
_ERRNO_MARKS = tuple(
    mark for code in DISK_FULL_ERRNOS for mark in (f"[Errno {code}]", f"os error {code})")
)
# Below this many free bytes a failed write is taken for a full disk: a
# partial checkpoint left by torch.save fills the disk to the last block.
NEARLY_FULL_BYTES = 1024 * 1024

UPLOAD_DISK_FULL = (
    "The studio's disk is full, so the file could not be stored. Nothing was kept; "
    "ask an operator to free some space (old jobs and datasets can be deleted), "
    "then upload again."
)


class DiskFull(OSError):
    """Refused before writing: the files would not fit."""

    def __init__(self, folder: Path, needed: int):
        super().__init__(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))
        self.needed = needed


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether `exc`, or an error it was raised from, says the disk is full."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if any(mark in str(exc) for mark in _ERRNO_MARKS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def mentions_disk_full(text: str) -> bool:
    """Whether a formatted traceback names a full disk's errno."""
    return any(mark in text for mark in _ERRNO_MARKS)


def _existing(folder: Path) -> Path:
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged process may still write on `folder`'s file system."""
    return shutil.disk_usage(_existing(folder)).free


def check_room(uploads, folder: Path) -> None:
    """Raise DiskFull unless `folder` can take the uploaded files. A file
    Django already streamed to a temporary file on the same file system is
    moved in by a rename and needs no room; the others are copied."""
    folder = _existing(folder)
    device = folder.stat().st_dev
    needed = 0
    for upload in uploads:
        if upload is None:
            continue
        temporary = getattr(upload, "temporary_file_path", None)
        if temporary is not None and os.stat(temporary()).st_dev == device:
            continue
        needed += upload.size
    if needed and free_bytes(folder) < needed:
        raise DiskFull(folder, needed)


def nearly_full(folder: Path) -> bool:
    try:
        return free_bytes(folder) < NEARLY_FULL_BYTES
    except OSError:
        return False


def discard_upload(request) -> None:
    """Delete the temporary file of an upload cut short by a full disk.

    Django deletes it when the file object is collected, which the failed
    parse's traceback delays; a request whose body parsed closes its files
    itself. `request` is Django's HttpRequest (DRF: `request._request`)."""
    for handler in getattr(request, "upload_handlers", ()):
        upload = getattr(handler, "file", None)
        if upload is not None:
            upload.close()


def upload_hit_full_disk(request) -> None:
    """Raise an ENOSPC OSError when the upload handler stopped the body on a
    full disk (datasets_app/uploads.py), so that the edges answer 507 as for
    any other full-disk error."""
    if getattr(request, "upload_disk_full", False):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "the upload's temporary file")
