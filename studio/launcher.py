"""Start the whole studio in one foreground process group: `python -m studio.launcher`.

What it runs: Redis (only when REDIS_URL is not set), the ASGI web server,
and one Celery worker for each queue. Before that it applies migrations,
creates the first admin user if there is none, and generates the offline demo
models. Ctrl-C (or SIGTERM) stops everything, Redis last, so that workers
finish their shutdown against a live broker.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import redis

from studio.env import env_int, env_path, env_str
from studio.redis_server import EmbeddedRedis, RedisStartError

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
READY_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30


@dataclass
class Role:
    name: str
    argv: list[str]


def roles(host: str, port: int) -> list[Role]:
    celery = [PYTHON, "-m", "celery", "-A", "studio", "worker", "--loglevel", "INFO"]
    return [
        Role(
            "web",
            [
                PYTHON, "-m", "uvicorn", "studio.asgi:application",
                "--host", host, "--port", str(port),
                "--no-access-log",
                # Open websockets would otherwise hold Ctrl-C up indefinitely.
                "--timeout-graceful-shutdown", "5",
            ],
        ),
        Role("default", [*celery, "-Q", "default", "-c", "2", "-n", "default@%h"]),
        # One job at a time, and a fresh child process per job so that all
        # the memory a training run took is returned (docs/architecture.md).
        Role(
            "train",
            [*celery, "-Q", "train", "-c", "1", "--prefetch-multiplier", "1",
             "--max-tasks-per-child", "1", "-n", "train@%h"],
        ),
        # Keeps models loaded between requests: one long-lived child.
        Role("infer", [*celery, "-Q", "infer", "-c", "1", "--prefetch-multiplier", "1",
                       "-n", "infer@%h"]),
        # The reaper and dispatcher of jobs (docs/architecture.md, "Durability").
        Role("beat", [PYTHON, "-m", "celery", "-A", "studio", "beat", "--loglevel", "INFO",
                      "-s", str(env_path("VAR_DIR", BASE_DIR / "var") / "celerybeat-schedule")]),
    ]  # fmt: skip


def say(message: str) -> None:
    print(f"\033[1m[tailor]\033[0m {message}", flush=True)


def relay(name: str, stream) -> None:
    """Copy a child's output to ours, each line prefixed with its role."""
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"{name:>8} | {line}")
        sys.stdout.flush()


def manage(*args: str, env: dict, capture: bool = False) -> str:
    result = subprocess.run(
        [PYTHON, str(BASE_DIR / "manage.py"), *args],
        env=env,
        cwd=BASE_DIR,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"`manage.py {' '.join(args)}` failed (exit {result.returncode}).")
    return result.stdout or ""


def start_own_redis(var_dir: Path) -> EmbeddedRedis:
    port = env_int("TAILOR_REDIS_PORT", 6390, minimum=1)
    data_dir = var_dir / "redis"
    stop_orphan(port, data_dir)
    server = EmbeddedRedis(data_dir, port)
    say(f"Starting Redis on 127.0.0.1:{port} (data in {data_dir})")
    server.start()
    return server


def stop_orphan(port: int, data_dir: Path) -> None:
    """Shut down a Redis that an earlier launcher left behind (killed with -9)."""
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    try:
        directory = client.config_get("dir").get("dir")
        if directory and Path(directory).resolve() == data_dir.resolve():
            say(f"Stopping the Redis an earlier run left on port {port}")
            client.shutdown(nosave=False)
            time.sleep(0.5)
    except redis.RedisError:
        pass  # nothing there, or not ours: EmbeddedRedis.start() explains a clash
    finally:
        client.close()


def wait_until_healthy(url: str, children: dict, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children.values()):
            return False
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own http URL)
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    return False


def stop_children(children: dict[str, subprocess.Popen]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for name, child in children.items():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in {STOP_TIMEOUT_S} s; killing it")
            child.kill()
            child.wait()


def main() -> int:
    host = env_str("HOST", "127.0.0.1")
    port = env_int("PORT", 8000, minimum=1)
    var_dir = env_path("VAR_DIR", BASE_DIR / "var")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="studio.settings", PYTHONUNBUFFERED="1")

    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    own_redis = None
    if not env.get("REDIS_URL"):
        try:
            own_redis = start_own_redis(var_dir)
        except RedisStartError as exc:
            say(str(exc))
            return 1
        env["REDIS_URL"] = own_redis.url
    else:
        say(f"Using the Redis at {env['REDIS_URL']}")

    children: dict[str, subprocess.Popen] = {}
    try:
        say("Applying database migrations")
        manage("migrate", "--noinput", env=env)
        admin_note = manage("ensure_admin", env=env, capture=True)
        say("Preparing the offline demo models")
        manage("make_demo_models", env=env)

        for role in roles(host, port):
            child = subprocess.Popen(
                role.argv,
                env=env,
                cwd=BASE_DIR,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            children[role.name] = child
            threading.Thread(target=relay, args=(role.name, child.stdout), daemon=True).start()

        # A server bound to every interface is still reached on the loopback.
        local = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        url = f"http://{local}:{port}/"
        if wait_until_healthy(url + "healthz", children, READY_TIMEOUT_S):
            say(f"Tailor is ready at {url}")
        elif not stopping.is_set():
            say(f"Not every part is up yet; see {url}healthz for which one.")
        for line in admin_note.strip().splitlines():
            say(line)
        say("Press Ctrl-C to stop.")

        while not stopping.is_set():
            for name, child in children.items():
                if child.poll() is not None:
                    say(f"{name} exited with code {child.returncode}; stopping the studio")
                    stopping.set()
                    break
            stopping.wait(1)
    finally:
        say("Stopping…")
        stop_children(children)
        if own_redis is not None:
            own_redis.stop()
        say("Stopped.")
    failed = [name for name, child in children.items() if child.returncode not in (0, -15, None)]
    return 1 if failed and not stopping.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
