"""Where the studio's files live when the machines share no file system.

The contract. Every file the studio keeps has a path under MEDIA_ROOT, and
its object key is that path relative to MEDIA_ROOT
(`datasets/<id>/r1/records.jsonl`). Two layouts, chosen by TAILOR_STORAGE:

- `filesystem` (the default, what `make run` uses): MEDIA_ROOT is the one
  copy, shared by every process (a mount, on several machines). `push` and
  `fetch` do nothing; `remove` deletes the local path; downloads are
  Django's FileResponse.
- `s3`: an S3-compatible bucket holds every file, and MEDIA_ROOT on each
  machine is that machine's cache and workspace. A writer writes a file
  completely, `push`es it, and only then records it in the database, so a
  row never names a file another machine cannot get. A reader `fetch`es
  first; a fetch downloads to a temporary name and renames, so nobody sees
  half a file, and content it already holds (studio/services/content_cache.py,
  by the sha256 that `push` keeps in the object's metadata) is not
  downloaded again. Downloads are a redirect to a presigned URL, or the
  object streamed through the web process (TAILOR_S3_DOWNLOADS).

Every failure of the store (unreachable, bucket missing, keys refused) is a
`StorageError` whose message is one sentence for a person; a key that is not
there is a `MissingObject`, which is also a FileNotFoundError, as a missing
local file would be (both from studio/services/s3_client.py, re-exported
here). Callers turn them into their own error shapes: 503 on the APIs, a
message on pages, a failure reason for a validation or a job.

The trade-offs. One HEAD per file on every fetch and push, to learn its
content: a fetch of a checkpoint folder costs a listing and a HEAD per
file, and no body when nothing changed; a push of unchanged content
uploads nothing. Objects are uploaded with boto3's managed transfer
(multipart past 8 MiB); a download is one streamed GET, hashed on the way,
so a corrupt or cut-off transfer is refused rather than kept. `push` only
adds: an object whose local file is gone stays until `remove`.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header

from studio.services import content_cache
from studio.services.s3_client import (
    MissingObject,
    StorageError,
    bucket,
    call,
    client,
    error,
    failures,
    storage,
    where,
)

__all__ = [
    "MissingObject",
    "StorageError",
    "Transfer",
    "client",
    "download_response",
    "enabled",
    "entries",
    "exists",
    "fetch",
    "key",
    "open_for_download",
    "push",
    "remove",
    "storage",
]

CHUNK_BYTES = content_cache.CHUNK_BYTES


def enabled() -> bool:
    return settings.TAILOR_STORAGE == "s3"


@dataclass
class Transfer:
    """What the `fetch`es and `push`es given this moved between this machine
    and the store: files and bytes (content already in place moves none) and
    the calls' wall time, HEADs and listings included. For a job's log."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def moved(self, size: int) -> None:
        self.files += 1
        self.bytes += size

    @contextmanager
    def timing(self):
        started = time.monotonic()
        try:
            yield self
        finally:
            self.seconds += time.monotonic() - started


def key(path: Path | str) -> str:
    """The object key of `path`: its place under MEDIA_ROOT."""
    root = Path(settings.MEDIA_ROOT).resolve()
    resolved = Path(path).resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise StorageError(f"{path} is not a file under MEDIA_ROOT ({root}), so it has no key.")
    return resolved.relative_to(root).as_posix()


def _content_id(head: dict) -> str:
    """The object's sha256 as `push` kept it; an object put there by
    something else is known by its ETag (also fixed by its content)."""
    sha = head.get("Metadata", {}).get("sha256")
    return sha or "etag-" + head["ETag"].strip('"')


def _files_under(object_key: str) -> list[str]:
    keys = []
    token = None
    while True:
        params = {"Prefix": object_key.rstrip("/") + "/"}
        if token:
            params["ContinuationToken"] = token
        page = call("list_objects_v2", object_key, **params)
        keys += [item["Key"] for item in page.get("Contents", ())]
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


def entries(path: Path | str, *, folders_only: bool = False) -> list[str]:
    """The names of the files and folders directly under the folder `path`
    in the store (one listing; only the folders with `folders_only`); with
    the filesystem layout, here. Raises StorageError."""
    path = Path(path)
    if not enabled():
        found = path.iterdir() if path.is_dir() else ()
        return sorted(p.name for p in found if p.is_dir() or not folders_only)
    prefix = key(path) + "/"
    pages = client().get_paginator("list_objects_v2")
    names = []
    try:
        for page in pages.paginate(Bucket=bucket(), Prefix=prefix, Delimiter="/"):
            folders = page.get("CommonPrefixes", ())
            names += [folder["Prefix"][len(prefix) :].rstrip("/") for folder in folders]
            if not folders_only:
                names += [item["Key"][len(prefix) :] for item in page.get("Contents", ())]
    except failures() as exc:
        raise error(exc, prefix) from exc
    return sorted(names)


# --- writing -----------------------------------------------------------------------------


def _push_file(path: Path, transfer: Transfer) -> None:
    object_key = key(path)
    sha = content_cache.sha256_file(path)
    try:
        already = _content_id(call("head_object", object_key, Key=object_key)) == sha
    except MissingObject:
        already = False
    if not already:
        try:
            # Managed: multipart past 8 MiB; the object appears only once whole.
            client().upload_file(
                str(path), bucket(), object_key, ExtraArgs={"Metadata": {"sha256": sha}}
            )
        except failures() as exc:
            raise error(exc, object_key) from exc
        transfer.moved(path.stat().st_size)
    content_cache.adopt(path, sha)


def push(path: Path | str, transfer: Transfer | None = None) -> None:
    """Upload the complete file `path`, or every file in the folder `path`,
    to its key(s). Call it before the database records the file. An object
    already holding the same content is not uploaded again. No-op with the
    filesystem layout. Counts what it moved in `transfer`. Raises StorageError."""
    if not enabled():
        return
    path = Path(path)
    if not path.exists():
        raise StorageError(f"{path} cannot be uploaded: there is no such file or folder.")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    with (transfer or Transfer()).timing() as tally:
        for file in files:
            _push_file(file, tally)


def remove(path: Path | str) -> None:
    """Delete the file or folder `path` here and, with object storage, every
    object under its key. Missing pieces are fine. Raises StorageError."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    if not enabled():
        return
    object_key = key(path)
    call("delete_object", object_key, Key=object_key)
    keys = _files_under(object_key)
    for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 at most
        batch = [{"Key": k} for k in keys[start : start + 1000]]
        call("delete_objects", object_key, Delete={"Objects": batch, "Quiet": True})
    content_cache.prune()


# --- reading -----------------------------------------------------------------------------


def _download(object_key: str, dest: Path, content_id: str, transfer: Transfer) -> None:
    """One streamed GET to a temporary name beside `dest`, checked against
    the content's sha256, then renamed into place."""
    import hashlib

    import urllib3

    dest.parent.mkdir(parents=True, exist_ok=True)
    temporary = content_cache._temporary_beside(dest)
    digest = hashlib.sha256()
    try:
        body = call("get_object", object_key, Key=object_key)["Body"]
        try:
            with open(temporary, "wb") as f:
                for chunk in body.iter_chunks(CHUNK_BYTES):
                    digest.update(chunk)
                    f.write(chunk)
        except (*failures(), urllib3.exceptions.HTTPError) as exc:
            raise StorageError(
                f"The download of {object_key} from {where()} broke off ({exc}); nothing was kept."
            ) from exc
        finally:
            body.close()
        if not content_id.startswith("etag-") and digest.hexdigest() != content_id:
            raise StorageError(
                f"{object_key} arrived from {where()} with other content than was stored "
                "(its sha256 differs); nothing was kept."
            )
        content_cache.adopt(temporary, content_id)
        os.replace(temporary, dest)
        transfer.moved(dest.stat().st_size)
    finally:
        temporary.unlink(missing_ok=True)


def _fetch_file(path: Path, object_key: str, transfer: Transfer) -> None:
    head = call("head_object", object_key, Key=object_key)
    content_id = _content_id(head)
    if content_cache.holds(path, content_id):
        return
    if (
        path.is_file()
        and not content_id.startswith("etag-")
        and path.stat().st_size == head["ContentLength"]
        and content_cache.sha256_file(path) == content_id
    ):
        content_cache.adopt(path, content_id)  # written here, or a lost cache
        return
    if content_cache.place(content_id, path):
        return
    _download(object_key, path, content_id, transfer)


def fetch(path: Path | str, transfer: Transfer | None = None) -> Path:
    """Make the file `path`, or every file under the folder `path`, present
    here as stored, and return `path`. Content this machine already holds is
    not downloaded again. No-op with the filesystem layout. Counts what it
    moved in `transfer`. Raises MissingObject when there is neither such a
    file nor such a folder in the store, StorageError when the store fails."""
    path = Path(path)
    if not enabled():
        return path
    with (transfer or Transfer()).timing() as tally:
        _fetch(path, key(path), tally)
    return path


def _fetch(path: Path, object_key: str, transfer: Transfer) -> None:
    try:
        _fetch_file(path, object_key, transfer)
        return
    except MissingObject as missing:
        keys = _files_under(object_key)
        if not keys:
            raise MissingObject(
                f"{where().capitalize()} holds no file or folder {object_key}."
            ) from missing
    root = Path(settings.MEDIA_ROOT)
    for file_key in keys:
        _fetch_file(root / file_key, file_key, transfer)


def exists(path: Path | str) -> bool:
    """Whether the file `path` is stored (here, with the filesystem layout)."""
    path = Path(path)
    if not enabled():
        return path.is_file()
    object_key = key(path)
    try:
        call("head_object", object_key, check_bucket=True, Key=object_key)
    except MissingObject:
        return False
    return True


def open_for_download(path: Path | str):
    """A binary stream of the file `path`, read as it is sent (never whole
    into memory): the local file, or the object's body (botocore's
    StreamingBody; its `content_length` is the object's size). Raises
    FileNotFoundError (MissingObject) and StorageError."""
    if not enabled():
        return open(path, "rb")
    object_key = key(path)
    answer = call("get_object", object_key, Key=object_key)
    body = answer["Body"]
    body.content_length = answer["ContentLength"]
    return body


def download_response(path: Path | str, filename: str):
    """What a download view returns for the file `path`, saved as
    `filename`: Django's FileResponse of the local file, or with object
    storage a redirect to a presigned URL (TAILOR_S3_DOWNLOADS=redirect)
    or the object streamed through this process (=stream)."""
    if not enabled():
        return FileResponse(open(path, "rb"), as_attachment=True, filename=filename)
    object_key = key(path)
    if settings.TAILOR_S3_DOWNLOADS == "redirect":
        disposition = content_disposition_header(True, filename)
        try:
            url = storage().url(object_key, parameters={"ResponseContentDisposition": disposition})
        except failures() as exc:  # signing is local, but reads the keys
            raise error(exc, object_key) from exc
        return HttpResponseRedirect(url)
    body = open_for_download(path)
    response = FileResponse(body, as_attachment=True, filename=filename)
    response["Content-Length"] = str(body.content_length)
    return response
