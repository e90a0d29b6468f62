"""Start the whole studio in one foreground process group: `python -m studio.launcher`.

What it runs: Redis (only when REDIS_URL is not set), the ASGI web server,
one Celery worker for each queue, and Celery beat. Before that it applies
migrations, creates the first admin user if there is none, and generates the
offline demo models. While the studio runs, a worker, beat or Redis that
exits is started again (see `Supervisor`); the PIDs of the running parts are
in `$VAR_DIR/launcher.json`. Ctrl-C (or SIGTERM), or the web server's end,
stops everything, Redis last, so that workers finish their shutdown against a
live broker.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import redis

from studio.env import env_int, env_path, env_str
from studio.redis_server import EmbeddedRedis, RedisStartError

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
READY_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
# A part that exits is started again after 1 s, 2 s, 4 s ... at most 30 s
# while it keeps failing; one that stayed up a minute starts over at 1 s.
FIRST_RESTART_DELAY_S = 1
MAX_RESTART_DELAY_S = 30
STABLE_AFTER_S = 60
# Whose forwarded headers uvicorn trusts by default: a proxy on this machine.
LOOPBACK = "127.0.0.1,::1"


@dataclass
class Role:
    name: str
    argv: list[str]
    # The studio cannot go on without it: when it exits, everything stops.
    essential: bool = False
    # Set for this part alone, over the launcher's environment.
    env: dict[str, str] = field(default_factory=dict)


def web_workers() -> int:
    """uvicorn processes serving the web role: one per core (at most 4) by
    default. One process runs Python on one core at a time; a team's scripts
    polling the API saturate it long before the machine (bench/load.py).
    Websockets work across processes: their groups live in Redis."""
    return env_int("TAILOR_WEB_WORKERS", min(4, os.cpu_count() or 1), minimum=1)


def roles(host: str, port: int) -> list[Role]:
    celery = [PYTHON, "-m", "celery", "-A", "studio", "worker", "--loglevel", "INFO"]
    return [
        Role(
            "web",
            [
                PYTHON, "-m", "uvicorn", "studio.asgi:application",
                "--host", host, "--port", str(port),
                "--workers", str(web_workers()),
                "--no-access-log",
                # The peers whose X-Forwarded-Proto/-For uvicorn believes (the
                # TLS proxy's address); anyone else's are ignored.
                "--forwarded-allow-ips", env_str("TAILOR_FORWARDED_ALLOW_IPS", LOOPBACK),
                # Open websockets would otherwise hold Ctrl-C up indefinitely.
                "--timeout-graceful-shutdown", "5",
            ],
            essential=True,
            # PostgreSQL connections from a pool (settings.py); web only.
            env={"TAILOR_DB_POOL": "1"},
        ),
        Role("default", [*celery, "-Q", "default", "-c", "2", "-n", "default@%h"]),
        # One job at a time, and a fresh child process per job so that all
        # the memory a training run took is returned (docs/architecture.md).
        # It also takes the memory classes its memory reaches (capacity.py).
        Role(
            "train",
            [*celery, "-Q", "train", "-c", "1", "--prefetch-multiplier", "1",
             "--max-tasks-per-child", "1", "-n", "train@%h"],
        ),
        # Keeps models loaded between requests: one long-lived child. It also
        # takes `infer.<its name>`, for requests whose base it has loaded.
        Role("infer", [*celery, "-Q", "infer", "-c", "1", "--prefetch-multiplier", "1",
                       "-n", "infer@%h"]),
        # Evaluations get a worker of their own, so they never hold up `infer`.
        Role("evaluate", [*celery, "-Q", "evaluate", "-c", "1", "--prefetch-multiplier", "1",
                          "-n", "evaluate@%h"]),
        # The reaper, the dispatcher and housekeeping, where no job can starve them.
        Role("maintenance", [*celery, "-Q", "maintenance", "-c", "1", "-n", "maintenance@%h"]),
        # Sends the reaper and dispatcher, and housekeeping, to `maintenance`
        # (docs/architecture.md, "Leased work").
        Role("beat", [PYTHON, "-m", "celery", "-A", "studio", "beat", "--loglevel", "INFO",
                      "-s", str(env_path("VAR_DIR", BASE_DIR / "var") / "celerybeat-schedule")]),
    ]  # fmt: skip


def say(message: str) -> None:
    print(f"\033[1m[tailor]\033[0m {message}", flush=True)


def say_each_line(text: str) -> None:
    for line in text.strip().splitlines():
        say(line)


def relay(name: str, stream) -> None:
    """Copy a child's output to ours, each line prefixed with its role."""
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"{name:>11} | {line}")
        sys.stdout.flush()


def spawn(role: Role, env: dict) -> subprocess.Popen:
    """Start a role in a process group of its own, so that signalling the group
    reaches what it started too: uvicorn's worker processes, Celery's pool.
    (Ctrl-C then reaches the launcher alone, which stops every part.)"""
    child = subprocess.Popen(
        role.argv,
        env={**env, **role.env},
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        process_group=0,
    )
    child.own_group = True
    threading.Thread(target=relay, args=(role.name, child.stdout), daemon=True).start()
    return child


def send(process: subprocess.Popen, sig: int) -> None:
    """`sig` to a part: to its whole process group when it has one (even once
    its leader is gone: a SIGKILLed uvicorn leaves its workers holding the
    port), else to the process while it runs."""
    if getattr(process, "own_group", False):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    elif process.poll() is None:
        process.send_signal(sig)


def exit_words(code: int) -> str:
    if code < 0:
        try:
            return f"exited with code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exited with code {code}"


# --- supervision -----------------------------------------------------------------


@dataclass
class Part:
    """One process the launcher keeps running; `start` launches it."""

    name: str
    start: Callable[[], subprocess.Popen]
    essential: bool = False
    # Stopped after every other part: the broker, so workers shut down cleanly.
    stops_last: bool = False
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    # Exits in a row, each before STABLE_AFTER_S: the back-off's exponent.
    quick_exits: int = 0
    restart_at: float | None = None


class Supervisor:
    """Keeps the studio's parts running: a part that exits is started again, alone.

    The launcher's loop calls `check()` once a second. A worker, beat or Redis
    that exited (a crash, the OOM killer, `kill -9`) is started again after
    1 s, then 2, 4 ... up to 30 s while it keeps dying, and the log says so.
    Redis comes back on its port and data folder, so the broker still holds
    its queued messages (append-only file) and the workers reconnect by
    themselves. An essential part (the web server) that exits is not
    restarted: `check()` reports it and the launcher stops the studio, since
    without it nobody can see what is wrong.

    Trade-off: a part that can never start (a broken setting, a port another
    program took) is retried every 30 s for ever instead of ending the studio.
    The log says why each time and /healthz shows its queue down, while the
    pages stay up to tell the user; giving up would take those with it.
    Polling once a second rather than handling SIGCHLD keeps this in one
    thread; a restart comes at most a second late, little beside a worker's
    own start-up.
    """

    def __init__(self, state_file: Path):
        self.parts: list[Part] = []
        self.state_file = state_file

    def adopt(self, part: Part, process: subprocess.Popen) -> None:
        """Supervise a part that was started already (the launcher's Redis)."""
        part.process, part.started_at = process, time.monotonic()
        self.parts.append(part)
        self.write_state()

    def start(self, part: Part) -> None:
        if part not in self.parts:
            self.parts.append(part)
        part.restart_at, part.started_at = None, time.monotonic()
        try:
            part.process = part.start()
        except (OSError, RedisStartError) as exc:
            part.process = None
            self.schedule_restart(part, f"could not start ({exc})")
        self.write_state()

    def check(self) -> Part | None:
        """Start again what is due; return an essential part that exited, if any."""
        now = time.monotonic()
        for part in self.parts:
            if part.restart_at is not None:
                if now >= part.restart_at:
                    self.start(part)
                continue
            code = part.process.poll()
            if code is None:
                continue
            send(part.process, signal.SIGKILL)  # what it started and left behind
            if part.essential:
                return part
            self.schedule_restart(part, exit_words(code))
        return None

    def schedule_restart(self, part: Part, what_happened: str) -> None:
        now = time.monotonic()
        if now - part.started_at >= STABLE_AFTER_S:
            part.quick_exits = 0
        delay = min(FIRST_RESTART_DELAY_S * 2**part.quick_exits, MAX_RESTART_DELAY_S)
        part.quick_exits += 1
        part.restarts += 1
        part.restart_at = now + delay
        say(f"{part.name} {what_happened}; restarting it in {delay} s (restart {part.restarts})")

    def write_state(self) -> None:
        """Record who runs where in launcher.json, for operators and tests."""
        state = {
            "launcher": os.getpid(),
            "parts": {
                part.name: {
                    "pid": part.process.pid if part.process and part.restart_at is None else None,
                    "restarts": part.restarts,
                }
                for part in self.parts
            },
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.state_file.with_suffix(".json.tmp")
        scratch.write_text(json.dumps(state, indent=2) + "\n")
        scratch.replace(self.state_file)  # readers never see half a file

    def stop(self) -> None:
        """Stop every part, those marked `stops_last` (the broker) after the others."""
        terminate([part for part in self.parts if not part.stops_last])
        terminate([part for part in self.parts if part.stops_last])
        self.state_file.unlink(missing_ok=True)


def terminate(parts: list[Part]) -> None:
    """SIGTERM to each at once, then SIGKILL to those still up after STOP_TIMEOUT_S."""
    running = [part for part in parts if part.process is not None]
    for part in running:
        send(part.process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for part in running:
        try:
            part.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{part.name} did not stop in {STOP_TIMEOUT_S} s; killing it")
            send(part.process, signal.SIGKILL)
            part.process.wait()
        send(part.process, signal.SIGKILL)  # anything of its group still there


# --- setting up --------------------------------------------------------------------


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


def redis_part(server: EmbeddedRedis) -> Part:
    def start_again() -> subprocess.Popen:
        server.start()  # same port, same data folder: the queues come back with it
        return server.process

    return Part("redis", start_again, stops_last=True)


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


def is_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own http URL)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def supervise(
    supervisor: Supervisor, url: str, admin_note: str, stopping: threading.Event
) -> Part | None:
    """Keep the parts running until Ctrl-C, or until an essential one ends (returned)."""
    ready_by = time.monotonic() + READY_TIMEOUT_S
    announced = False
    while not stopping.is_set():
        lost = supervisor.check()
        if lost is not None:
            say(f"{lost.name} {exit_words(lost.process.returncode)}; stopping the studio")
            return lost
        if not announced:
            ready = is_healthy(url + "healthz")
            if ready or time.monotonic() > ready_by:
                if ready:
                    say(f"Tailor is ready at {url}")
                else:
                    say(f"Not every part is up yet; see {url}healthz for which one.")
                say_each_line(admin_note)
                say("Press Ctrl-C to stop.")
                announced = True
        stopping.wait(1)
    if not announced:  # the first admin's password is shown only this once
        say_each_line(admin_note)
    return None


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

    supervisor = Supervisor(var_dir / "launcher.json")
    if not env.get("REDIS_URL"):
        try:
            own_redis = start_own_redis(var_dir)
        except RedisStartError as exc:
            say(str(exc))
            return 1
        env["REDIS_URL"] = own_redis.url
        supervisor.adopt(redis_part(own_redis), own_redis.process)
    else:
        say(f"Using the Redis at {env['REDIS_URL']}")

    lost = None
    try:
        say("Applying database migrations")
        manage("migrate", "--noinput", env=env)
        admin_note = manage("ensure_admin", env=env, capture=True)
        say("Preparing the offline demo models")
        manage("make_demo_models", env=env)

        for role in roles(host, port):
            supervisor.start(Part(role.name, partial(spawn, role, env), essential=role.essential))

        # A server bound to every interface is still reached on the loopback.
        local = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        lost = supervise(supervisor, f"http://{local}:{port}/", admin_note, stopping)
    finally:
        say("Stopping…")
        supervisor.stop()
        say("Stopped.")
    return 1 if lost is not None else 0


if __name__ == "__main__":
    sys.exit(main())
