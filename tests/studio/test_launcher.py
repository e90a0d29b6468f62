"""`make run`'s launcher on a fresh data folder: healthy within 60 s, Ctrl-C stops
all, and a worker or Redis that dies is started again while the web keeps
answering (fault test 18).

Real processes throughout: the launcher, its Redis, uvicorn and the Celery
workers, killed with SIGKILL as the OOM killer would.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from studio.launcher import STABLE_AFTER_S, Part, Supervisor
from studio.redis_server import free_port, port_is_free

ROOT = Path(__file__).resolve().parents[2]
ROUTING_TRAIN = ROOT / "datasets_app" / "samples" / "support-routing" / "train.jsonl"
QUEUES = {"default", "train", "infer", "evaluate", "maintenance"}
# A first start migrates a new database and starts ten Python processes: on a
# 2-core machine that other work shares, that took 40-100 s. Start-up time is
# not what these tests measure (the figures are in their recovery lines).
STARTUP_SECONDS = 180

pytestmark = pytest.mark.integration


def fetch(url: str, *, data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return None, ""


def wait_for(condition, timeout: float, what: str):
    """Poll `condition()` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


@dataclass
class Studio:
    """A launcher started on its own ports and data folder."""

    process: subprocess.Popen
    port: int
    redis_port: int
    var_dir: Path
    log: Path
    env: dict

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text()

    def pid(self, part: str) -> int | None:
        """The part's PID from launcher.json; None while it waits to start again."""
        try:
            state = json.loads((self.var_dir / "launcher.json").read_text())
        except FileNotFoundError:
            return None
        return state["parts"].get(part, {}).get("pid")

    def health(self) -> dict | None:
        """/healthz's report when it says healthy, else None."""
        status, body = fetch(f"{self.url}/healthz")
        return json.loads(body) if status == 200 else None


def start_studio(folder: Path, demo_models, **settings: str) -> Studio:
    port, redis_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT"}
    }
    env.update(
        PORT=str(port),
        VAR_DIR=str(folder / "var"),
        TAILOR_REDIS_PORT=str(redis_port),
        # The demo models are deterministic: reuse the ones already generated.
        MODELS_ROOT=str(demo_models.tiny_path().parent),
        **settings,
    )
    log = folder / "launcher.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "studio.launcher"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    return Studio(process, port, redis_port, folder / "var", log, env)


def wait_until_healthy(studio: Studio, timeout: float) -> dict:
    def healthy():
        assert studio.process.poll() is None, studio.output()[-4000:]
        return studio.health()

    try:
        return wait_for(healthy, timeout, "/healthz answering 200")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{studio.output()[-4000:]}") from None


def stop_studio(studio: Studio) -> int:
    """What a terminal does on Ctrl-C: SIGINT to the whole foreground group."""
    if studio.process.poll() is not None:
        return studio.process.returncode
    os.killpg(studio.process.pid, signal.SIGINT)
    try:
        return studio.process.wait(45)
    except subprocess.TimeoutExpired:
        os.killpg(studio.process.pid, signal.SIGKILL)
        raise


def test_the_launcher_starts_everything_and_ctrl_c_stops_it(tmp_path, demo_models):
    studio = start_studio(tmp_path, demo_models)
    try:
        health = wait_until_healthy(studio, STARTUP_SECONDS)
        # An anonymous /healthz says only what is up; launcher.json (below)
        # shows one process per queue.
        assert health["queues"] == {name: {"up": True} for name in QUEUES}
        status, body = fetch(f"{studio.url}/login/")
        assert status == 200 and "Log in to Tailor" in body
        assert (studio.var_dir / "tailor.sqlite3").exists()
        assert (studio.var_dir / "secret_key").exists()
        assert (studio.var_dir / "redis" / "appendonlydir").exists()
        state = json.loads((studio.var_dir / "launcher.json").read_text())
        assert state["launcher"] == studio.process.pid
        assert set(state["parts"]) == {"redis", "web", "beat", *QUEUES}

        output = wait_for(
            lambda: "Press Ctrl-C to stop." in (text := studio.output()) and text,
            10,
            "the ready message",
        )
        assert f"Tailor is ready at {studio.url}/" in output
        assert "username: admin" in output and "password: " in output
    finally:
        code = stop_studio(studio)
    assert code == 0, studio.output()[-4000:]
    assert "Stopped." in studio.output()
    assert not (studio.var_dir / "launcher.json").exists()
    assert port_is_free(studio.port) and port_is_free(studio.redis_port)


# --- fault test 18: the launcher supervises -------------------------------------


def test_restarts_back_off_from_one_second_to_thirty_and_start_over_after_a_quiet_minute(
    tmp_path, capsys
):
    supervisor = Supervisor(tmp_path / "launcher.json")
    part = Part("train", start=lambda: None)
    delays = []
    for _ in range(7):
        part.started_at = time.monotonic()
        supervisor.schedule_restart(part, "exited with code 1")
        delays.append(round(part.restart_at - time.monotonic()))
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    part.started_at = time.monotonic() - STABLE_AFTER_S
    supervisor.schedule_restart(part, "exited with code -9 (killed by SIGKILL)")
    assert round(part.restart_at - time.monotonic()) == 1
    assert (
        capsys.readouterr()
        .out.splitlines()[-1]
        .endswith("train exited with code -9 (killed by SIGKILL); restarting it in 1 s (restart 8)")
    )


@pytest.fixture(scope="module")
def studio(tmp_path_factory, demo_models):
    """One studio for the fault tests, with short leases so a lost job is reaped fast."""
    running = start_studio(
        tmp_path_factory.mktemp("supervised"),
        demo_models,
        TAILOR_HEARTBEAT_SECONDS="1",
        TAILOR_JOB_LEASE_SECONDS="5",
        TAILOR_REAPER_INTERVAL_SECONDS="2",
    )
    try:
        wait_until_healthy(running, 90)
        yield running
    finally:
        stop_studio(running)


@contextmanager
def web_watch(studio: Studio):
    """Ask for the login page five times a second; yield the list of unanswered asks."""
    silences: list[float] = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            if fetch(f"{studio.url}/login/")[0] is None:
                silences.append(time.monotonic())
            done.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield silences
    finally:
        done.set()
        watcher.join()


def kill_and_time_recovery(studio: Studio, part: str) -> tuple[float, float]:
    """SIGKILL the part; seconds until it runs again, and until /healthz is 200."""
    old = studio.pid(part)
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: studio.pid(part) not in (None, old), 30, f"{part} started again")
    restarted = time.monotonic() - killed
    wait_until_healthy(studio, 60)
    return restarted, time.monotonic() - killed


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def report(record_property, part: str, restarted: float, healthy: float) -> None:
    record_property(f"{part}_restarted_s", round(restarted, 1))
    record_property(f"{part}_healthy_s", round(healthy, 1))
    print(f"\n{part} killed: running again in {restarted:.1f} s, /healthz 200 in {healthy:.1f} s")


def test_a_killed_worker_is_started_again_while_the_web_keeps_answering(studio, record_property):
    worker = studio.pid("train")
    pool = Path(f"/proc/{worker}/task/{worker}/children").read_text().split()
    with web_watch(studio) as silences:
        restarted, healthy = kill_and_time_recovery(studio, "train")
    report(record_property, "train", restarted, healthy)
    assert silences == []
    assert (
        "train exited with code -9 (killed by SIGKILL); restarting it in 1 s (restart 1)"
        in studio.output()
    )
    # Its pool child went with it (Celery sets the parent-death signal).
    assert pool and not any(is_running(int(child)) for child in pool)
    assert studio.process.poll() is None


def test_a_killed_redis_comes_back_on_its_port_with_its_data(studio, record_property):
    before = redis.Redis(port=studio.redis_port, db=15)
    before.rpush("fault-18", "queued before the kill")
    # appendfsync everysec: give the append-only file its second.
    time.sleep(1.5)
    before.close()
    with web_watch(studio) as silences:
        restarted, healthy = kill_and_time_recovery(studio, "redis")
    report(record_property, "redis", restarted, healthy)
    assert silences == []
    after = redis.Redis(port=studio.redis_port, db=15)
    assert after.lrange("fault-18", 0, -1) == [b"queued before the kill"]
    after.close()
    assert "redis exited with code -9 (killed by SIGKILL); restarting it in 1 s" in studio.output()


def api(studio: Studio, token: str, path: str, body: dict | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    status, text = fetch(f"{studio.url}{path}", data=data, headers=headers)
    assert status in (200, 201), f"{path}: {status} {text[:2000]}"
    return json.loads(text)


def upload(studio: Studio, token: str, path: Path) -> dict:
    boundary = uuid.uuid4().hex
    body = b"".join([
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"{path.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
        path.read_bytes(),
        f"\r\n--{boundary}--\r\n".encode(),
    ])  # fmt: skip
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    status, text = fetch(f"{studio.url}/api/v1/datasets/", data=body, headers=headers)
    assert status == 201, text[:2000]
    return json.loads(text)


def test_a_job_succeeds_when_its_train_worker_is_killed_mid_run(studio, record_property):
    token = subprocess.run(
        [sys.executable, "manage.py", "create_token", "admin"],
        cwd=ROOT, env={**studio.env, "REDIS_URL": f"redis://127.0.0.1:{studio.redis_port}"},
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    dataset = upload(studio, token, ROUTING_TRAIN)["id"]
    wait_for(
        lambda: api(studio, token, f"/api/v1/datasets/{dataset}/")["status"] == "ready",
        60,
        "the dataset validated",
    )
    job = api(studio, token, "/api/v1/jobs/", {
        "dataset": dataset, "base_model": "tailor-tiny", "method": "lora", "preset": "quick",
        "hyperparameters": {"max_steps": 16, "save_every": 4, "batch_size": 4},
    })["id"]  # fmt: skip

    def job_state():
        return api(studio, token, f"/api/v1/jobs/{job}/")

    wait_for(lambda: job_state()["current_step"] >= 6, 90, "the job past its first checkpoint")
    killed = time.monotonic()
    restarted, healthy = kill_and_time_recovery(studio, "train")
    finished = wait_for(
        lambda: (state := job_state())["status"] in {"succeeded", "failed", "cancelled"} and state,
        120,
        "the job finished",
    )
    report(record_property, "train-mid-job", restarted, healthy)
    record_property("job_finished_after_kill_s", round(time.monotonic() - killed, 1))
    print(f"the job finished {time.monotonic() - killed:.1f} s after its worker was killed")
    assert finished["status"] == "succeeded", finished
    assert finished["attempt"] == 2
    events = api(studio, token, f"/api/v1/jobs/{job}/events/?after=0")["results"]
    assert any(event["message"].startswith("Resuming from checkpoint-") for event in events)


def test_the_end_of_the_web_server_stops_the_whole_studio(studio):
    """Last on the shared studio: it ends it."""
    os.kill(studio.pid("web"), signal.SIGKILL)
    code = studio.process.wait(60)
    output = studio.output()
    assert code == 1, output[-4000:]
    assert "web exited with code -9 (killed by SIGKILL); stopping the studio" in output
    assert "Stopped." in output
    assert not (studio.var_dir / "launcher.json").exists()
    assert port_is_free(studio.port) and port_is_free(studio.redis_port)
