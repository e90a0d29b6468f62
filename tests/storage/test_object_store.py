"""studio/services/object_store.py against a real S3-compatible server
(moto, on loopback): what is pushed on one machine is fetched on another,
atomically, once; what is removed goes in both places; a store that fails
says so in one sentence; the filesystem layout is today's."""

import hashlib
import os
import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.http import FileResponse

from studio.redis_server import free_port
from studio.services import object_store


@pytest.fixture
def machines(tmp_path, settings):
    """Two MEDIA_ROOTs, as on two machines; `settings` starts on the first."""
    first, second = tmp_path / "web-machine", tmp_path / "gpu-machine"
    first.mkdir()
    second.mkdir()
    settings.MEDIA_ROOT = first
    return first, second


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def gets(s3) -> tuple[int, int]:
    return s3.requests["GetObject"], s3.requests["body_bytes"]


def test_a_pushed_file_is_stored_under_its_path_with_its_sha256(s3, machines):
    content = b'{"messages": []}\n' * 1000
    path = write(machines[0] / "datasets" / "d1" / "r1" / "records.jsonl", content)

    object_store.push(path)

    head = s3.server.client().head_object(Bucket=s3.name, Key="datasets/d1/r1/records.jsonl")
    assert head["Metadata"] == {"sha256": hashlib.sha256(content).hexdigest()}
    assert head["ContentLength"] == len(content)


def test_a_folder_pushed_on_one_machine_is_fetched_on_another(s3, machines, settings):
    web, gpu = machines
    folder = web / "jobs" / "j1" / "attempt-1" / "checkpoints" / "checkpoint-3"
    write(folder / "adapter_model.safetensors", os.urandom(300_000))
    write(folder / "trainer_state.json", b'{"global_step": 3}')
    write(folder / "optimizer" / "state.pt", os.urandom(50_000))
    object_store.push(folder)

    settings.MEDIA_ROOT = gpu
    fetched = object_store.fetch(gpu / "jobs" / "j1" / "attempt-1" / "checkpoints" / "checkpoint-3")

    assert fetched == gpu / "jobs/j1/attempt-1/checkpoints/checkpoint-3"
    for name in ("adapter_model.safetensors", "trainer_state.json", "optimizer/state.pt"):
        assert (fetched / name).read_bytes() == (folder / name).read_bytes()
    assert s3.keys("jobs/") == [
        "jobs/j1/attempt-1/checkpoints/checkpoint-3/adapter_model.safetensors",
        "jobs/j1/attempt-1/checkpoints/checkpoint-3/optimizer/state.pt",
        "jobs/j1/attempt-1/checkpoints/checkpoint-3/trainer_state.json",
    ]


def test_a_second_fetch_transfers_nothing(s3, machines, settings):
    web, gpu = machines
    content = os.urandom(2_000_000)
    write(web / "datasets" / "d1" / "r1" / "train.jsonl", content)
    object_store.push(web / "datasets" / "d1" / "r1")
    settings.MEDIA_ROOT = gpu

    object_store.fetch(gpu / "datasets" / "d1" / "r1" / "train.jsonl")
    first = gets(s3)
    object_store.fetch(gpu / "datasets" / "d1" / "r1" / "train.jsonl")
    object_store.fetch(gpu / "datasets" / "d1" / "r1")

    assert first == (1, len(content))
    assert gets(s3) == first  # no GET, no byte more
    assert (gpu / "datasets/d1/r1/train.jsonl").read_bytes() == content


def test_the_same_content_under_another_key_is_not_downloaded_again(s3, machines, settings):
    """A second job's copy of one dataset's training file: placed from what
    the machine already holds, by its content."""
    web, gpu = machines
    content = os.urandom(500_000)
    write(web / "jobs" / "j1" / "data" / "train.jsonl", content)
    write(web / "jobs" / "j2" / "data" / "train.jsonl", content)
    object_store.push(web / "jobs")
    settings.MEDIA_ROOT = gpu

    object_store.fetch(gpu / "jobs" / "j1" / "data")
    object_store.fetch(gpu / "jobs" / "j2" / "data")

    assert gets(s3) == (1, len(content))
    assert (gpu / "jobs/j2/data/train.jsonl").read_bytes() == content


def test_a_changed_object_is_downloaded_again(s3, machines, settings):
    web, gpu = machines
    path = write(web / "jobs" / "j1" / "config.json", b'{"lr": 1}')
    object_store.push(path)
    settings.MEDIA_ROOT = gpu
    object_store.fetch(gpu / "jobs" / "j1" / "config.json")

    settings.MEDIA_ROOT = web
    write(path, b'{"lr": 2}')
    object_store.push(path)
    settings.MEDIA_ROOT = gpu
    object_store.fetch(gpu / "jobs" / "j1" / "config.json")

    assert (gpu / "jobs/j1/config.json").read_bytes() == b'{"lr": 2}'
    assert gets(s3) == (2, 18)


def test_a_file_rewritten_in_place_is_not_taken_for_the_cached_content(s3, machines):
    web = machines[0]
    path = write(web / "jobs" / "j1" / "notes.txt", b"first")
    object_store.push(path)
    with open(path, "r+b") as f:  # the same inode as the cache's entry
        f.write(b"FIRST")

    object_store.fetch(path)

    assert path.read_bytes() == b"first"
    assert gets(s3) == (1, 5)


def test_an_unchanged_file_is_not_uploaded_again(s3, machines):
    path = write(machines[0] / "jobs" / "j1" / "adapter.zip", os.urandom(100_000))
    object_store.push(path)
    puts = s3.requests["PutObject"]

    object_store.push(path)

    assert puts == 1
    assert s3.requests["PutObject"] == 1


def test_remove_deletes_a_folder_here_and_in_the_store(s3, machines):
    web = machines[0]
    write(web / "datasets" / "d1" / "source" / "tickets.jsonl", b"a")
    write(web / "datasets" / "d1" / "r1" / "records.jsonl", b"b")
    write(web / "datasets" / "d10" / "source" / "other.jsonl", b"c")
    object_store.push(web / "datasets")

    object_store.remove(web / "datasets" / "d1")

    assert not (web / "datasets" / "d1").exists()
    assert s3.keys() == ["datasets/d10/source/other.jsonl"]
    # The cache keeps nothing that only the removed files used.
    assert sorted(p.name for p in (web / ".content").iterdir() if p.suffix != ".stat") == [
        hashlib.sha256(b"c").hexdigest()
    ]


def test_a_file_not_in_the_store_is_a_missing_file(s3, machines):
    path = machines[0] / "datasets" / "d9" / "records.jsonl"

    with pytest.raises(FileNotFoundError) as raised:
        object_store.fetch(path)

    assert isinstance(raised.value, object_store.MissingObject)
    assert str(raised.value) == (
        f"The object store at {s3.server.endpoint} holds no file or folder "
        "datasets/d9/records.jsonl."
    )
    assert not object_store.exists(path)


def test_a_corrupt_download_leaves_no_file_behind(s3, machines, settings):
    """The store sends other bytes than were pushed: refused, and the
    earlier copy at the path stays whole."""
    gpu = machines[1]
    s3.server.client().put_object(
        Bucket=s3.name, Key="jobs/j1/adapter.zip", Body=b"tampered",
        Metadata={"sha256": hashlib.sha256(b"original").hexdigest()},
    )  # fmt: skip
    settings.MEDIA_ROOT = gpu
    earlier = write(gpu / "jobs" / "j1" / "adapter.zip", b"an earlier copy")

    with pytest.raises(object_store.StorageError) as raised:
        object_store.fetch(earlier)

    assert str(raised.value) == (
        f"jobs/j1/adapter.zip arrived from the object store at {s3.server.endpoint} with "
        "other content than was stored (its sha256 differs); nothing was kept."
    )
    assert earlier.read_bytes() == b"an earlier copy"
    assert sorted(p.name for p in earlier.parent.iterdir()) == ["adapter.zip"]


class _DropsMidFile(BaseHTTPRequestHandler):
    """A store that answers HEAD properly and cuts every GET off halfway."""

    content = os.urandom(1_000_000)

    def _headers(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.content)))
        self.send_header("ETag", '"e"')
        self.send_header("x-amz-meta-sha256", hashlib.sha256(self.content).hexdigest())
        self.end_headers()

    def do_HEAD(self):
        self._headers()

    def do_GET(self):
        self._headers()
        self.wfile.write(self.content[: len(self.content) // 2])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args):
        pass


def test_a_download_cut_off_midway_leaves_no_partial_file(machines, settings):
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _DropsMidFile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.TAILOR_STORAGE, settings.TAILOR_S3_BUCKET = "s3", "cut-off"
    settings.TAILOR_S3_ENDPOINT_URL = f"http://127.0.0.1:{server.server_port}"
    settings.TAILOR_S3_ADDRESSING_STYLE = "path"
    settings.TAILOR_S3_ACCESS_KEY_ID = settings.TAILOR_S3_SECRET_ACCESS_KEY = "k"
    path = machines[0] / "jobs" / "j1" / "adapter.zip"
    try:
        with pytest.raises(object_store.StorageError) as raised:
            object_store.fetch(path)
    finally:
        server.shutdown()

    message = str(raised.value)
    assert message.startswith(
        "The download of jobs/j1/adapter.zip from the object store at "
        f"{settings.TAILOR_S3_ENDPOINT_URL} broke off ("
    ), message
    assert message.endswith("); nothing was kept."), message
    assert not path.exists()
    assert list(path.parent.iterdir()) == []


def test_an_unreachable_store_is_told_in_one_sentence(machines, settings):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings.TAILOR_STORAGE, settings.TAILOR_S3_BUCKET = "s3", "anything"
    settings.TAILOR_S3_ENDPOINT_URL, settings.TAILOR_S3_ADDRESSING_STYLE = endpoint, "path"
    settings.TAILOR_S3_ACCESS_KEY_ID = settings.TAILOR_S3_SECRET_ACCESS_KEY = "k"
    path = write(machines[0] / "datasets" / "d1" / "source" / "a.jsonl", b"{}")

    with pytest.raises(object_store.StorageError) as raised:
        object_store.push(path)

    assert str(raised.value) == (
        f"The object store at {endpoint} could not be reached (Could not connect to the "
        f'endpoint URL: "{endpoint}/anything/datasets/d1/source/a.jsonl"): check '
        "TAILOR_S3_ENDPOINT_URL and that the store is running."
    )


def test_a_missing_bucket_is_told_in_one_sentence(s3, machines, settings):
    settings.TAILOR_S3_BUCKET = "no-such-bucket"
    path = write(machines[0] / "datasets" / "d1" / "source" / "a.jsonl", b"{}")
    expected = (
        f"The bucket 'no-such-bucket' does not exist at the object store at "
        f"{s3.server.endpoint}: create it, or set TAILOR_S3_BUCKET to one that does."
    )

    for act in (object_store.push, object_store.fetch, object_store.remove):
        with pytest.raises(object_store.StorageError) as raised:
            act(path)
        assert str(raised.value) == expected, act


def test_a_download_redirects_to_a_presigned_url_that_serves_the_file(s3, machines):
    content = os.urandom(200_000)
    path = write(machines[0] / "jobs" / "j1" / "export-1" / "merged-model.zip", content)
    object_store.push(path)

    response = object_store.download_response(path, "routing-1a2b3c4d-merged.zip")

    assert response.status_code == 302
    with urllib.request.urlopen(response["Location"]) as served:
        assert served.read() == content
        assert served.headers["Content-Disposition"] == (
            'attachment; filename="routing-1a2b3c4d-merged.zip"'
        )


def test_a_streamed_download_sends_the_object_through(s3, machines, settings):
    settings.TAILOR_S3_DOWNLOADS = "stream"
    content = os.urandom(3_000_000)
    path = write(machines[0] / "jobs" / "j1" / "attempt-1" / "adapter.zip", content)
    object_store.push(path)
    path.unlink()  # the web machine's copy is not needed

    response = object_store.download_response(path, "routing-adapter.zip")

    assert response.streaming
    assert response["Content-Length"] == str(len(content))
    assert response["Content-Disposition"] == 'attachment; filename="routing-adapter.zip"'
    assert b"".join(response.streaming_content) == content


def test_the_filesystem_layout_is_unchanged(machines, settings):
    assert settings.TAILOR_STORAGE == "filesystem"
    web = machines[0]
    path = write(web / "datasets" / "d1" / "r1" / "records.jsonl", b"rows")

    object_store.push(path)
    assert object_store.fetch(path) == path
    assert object_store.exists(path)
    response = object_store.download_response(path, "records.jsonl")
    assert isinstance(response, FileResponse)
    assert b"".join(response.streaming_content) == b"rows"
    response.close()
    object_store.remove(web / "datasets" / "d1")

    assert not object_store.enabled()
    assert not (web / "datasets" / "d1").exists()
    assert not (web / ".content").exists()  # no cache: MEDIA_ROOT is the one copy
