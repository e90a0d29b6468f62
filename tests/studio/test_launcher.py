"""`make run`'s launcher on a fresh data folder: healthy within 60 s, Ctrl-C stops all."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from studio.redis_server import free_port, port_is_free

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def fetch(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return None, ""


def test_the_launcher_starts_everything_and_ctrl_c_stops_it(tmp_path, demo_models):
    port, redis_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT"}
    }
    env.update(
        PORT=str(port),
        VAR_DIR=str(tmp_path / "var"),
        TAILOR_REDIS_PORT=str(redis_port),
        # The demo models are deterministic: reuse the ones already generated.
        MODELS_ROOT=str(demo_models.tiny_path().parent),
    )
    log = (tmp_path / "launcher.log").open("w+")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "studio.launcher"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    started = time.monotonic()
    try:
        health = None
        while time.monotonic() - started < 60:
            status, body = fetch(f"http://127.0.0.1:{port}/healthz")
            if status == 200:
                health = json.loads(body)
                break
            assert launcher.poll() is None, (tmp_path / "launcher.log").read_text()[-4000:]
            time.sleep(1)
        output = (tmp_path / "launcher.log").read_text()
        assert health is not None, f"not healthy within 60 s:\n{output[-4000:]}"
        assert {name: q["workers"] for name, q in health["queues"].items()} == {
            "default": 1,
            "train": 1,
            "infer": 1,
        }
        status, body = fetch(f"http://127.0.0.1:{port}/login/")
        assert status == 200 and "Log in to Tailor" in body
        assert (tmp_path / "var" / "tailor.sqlite3").exists()
        assert (tmp_path / "var" / "secret_key").exists()
        assert (tmp_path / "var" / "redis" / "appendonlydir").exists()

        deadline = time.monotonic() + 10
        while "Press Ctrl-C to stop." not in output and time.monotonic() < deadline:
            time.sleep(0.5)
            output = (tmp_path / "launcher.log").read_text()
        assert f"Tailor is ready at http://127.0.0.1:{port}/" in output
        assert "username: admin" in output and "password: " in output
    finally:
        # What a terminal does on Ctrl-C: SIGINT to the whole foreground group.
        os.killpg(launcher.pid, signal.SIGINT)
        try:
            code = launcher.wait(45)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            raise
    assert code == 0, (tmp_path / "launcher.log").read_text()[-4000:]
    assert "Stopped." in (tmp_path / "launcher.log").read_text()
    assert port_is_free(port) and port_is_free(redis_port)
