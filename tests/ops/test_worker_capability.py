"""/ops/ shows what each worker can take: its device, the memory routing
counts and where that figure comes from, its memory classes, and the models
it has loaded and on its disk (studio/services/capacity.py, ops/facts.py).
Heartbeats as a worker writes them, in the real Redis; the cache on disk."""

import pytest

from ops import facts, snapshot, workers

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_models")]

GIB = 2**30
NAMES = ("l4@box", "old@box")


@pytest.fixture(autouse=True)
def _forget_our_heartbeats():
    yield
    for name in NAMES:
        workers.forget(name)


def heartbeat(name: str, **fields) -> None:
    workers.write({
        "name": name, "pid": 4242, "queues": ["default", "train"], "concurrency": 1,
        "started_at": "2026-01-01T00:00:00+00:00", "uptime_seconds": 60.0, "host": "box",
        "torch": "2.13.0", "cuda": "12.8", "memory_total": 64 * GIB, "gpus": [],
        "memory_used": GIB, "loaded": None, "at": "2026-01-01T00:01:00+00:00", **fields,
    })  # fmt: skip


def worker_row(page: str, name: str) -> str:
    start = page.index(f'data-worker="{name}"')
    return page[start : page.index("</tr>", start)]


def test_each_worker_shows_its_device_memory_classes_and_models(client, olga):
    heartbeat(
        "l4@box", device="NVIDIA L4", memory_gib=24, memory_from="gpu",
        queues=["default", "train", "train.16gib", "train.24gib"],
        memory_classes=["up to 8 GiB", "up to 16 GiB", "up to 24 GiB"],
        cached_models=["meta-llama/Llama-3.2-1B", "tailor-tiny"],
        loaded=[{"source": "/srv/tailor/var/models/tailor-tiny", "task": "causal-lm",
                 "quantized": False, "bytes": 3 * 2**20, "adapters": ["ft_1"]}],
    )  # fmt: skip
    heartbeat("old@box")  # a worker of a version that did not report its capability
    client.force_login(olga)
    page = client.get("/ops/?section=workers").content.decode()
    row = worker_row(page, "l4@box")
    assert "NVIDIA L4 · 24 GiB" in row
    assert "its GPU's memory" in row
    assert "classes: up to 8 GiB, up to 16 GiB, up to 24 GiB" in row
    assert '<code>tailor-tiny</code> <span class="muted small-text">+1 adapter</span>' in row
    assert "on disk: meta-llama/Llama-3.2-1B, tailor-tiny" in row
    old = worker_row(page, "old@box")
    assert "not reported" in old
    assert '<td data-testid="ops-worker-models"><span class="muted">none</span></td>' in old
    # The API says the same, from the same records.
    found = {w["name"]: w for w in snapshot.fleet()["workers"]}
    assert found["l4@box"]["memory_gib"] == 24
    # Its classes are read from its queues: with none set, one class of any size.
    assert found["old@box"]["memory_classes"] == ["any size"]
    assert found["old@box"]["cached_models"] == []


def test_a_worker_names_the_models_in_its_hugging_face_cache(tmp_path, monkeypatch):
    (tmp_path / "models--Qwen--Qwen2.5-0.5B-Instruct").mkdir()
    (tmp_path / "datasets--some--set").mkdir()  # not a model
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert facts.cached_models() == ["Qwen/Qwen2.5-0.5B-Instruct", "minilm-l6", "tailor-tiny"]
