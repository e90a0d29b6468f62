"""The real processes a test drives, and waiting on them.

- `wait_for`: poll a predicate until it holds, or fail the test (with a
  child's log tail when it died meanwhile).
- `ChildProcess`, `child_env`: a studio process (worker, beat, server) in a
  session of its own, against the test database, its output in
  `test-artifacts/<name>.log`.
- `CeleryWorker`, `Beat`, `paused_workers`, `serves`, `WORKER_ENV`,
  `PRODUCTION_TRAIN`: real Celery workers and beat with short leases.
- `studio(...)`: a fault test's own workers, a maintenance worker and beat
  for a block, the session's workers on those queues paused meanwhile.
- `SessionRedis`: the session's Redis, for tests that stop or kill it.
- `kill`, `gone`, `Stopwatch`, `job_when_finished`, `wait_until_step`:
  faulting a process, and timing and waiting for the recovery.
- `CHROMIUM`, `CHROMIUM_ARGS`, `PASSWORD`, `log_in`, `fits_the_screen`: the browser, and a
  persona logging in with it (every persona's password is `PASSWORD`).

tests/conftest.py imports this module before the settings load: nothing
here imports Django settings or models at import time.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from studio.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery staple"


# --- child processes against the test database ---------------------------------


def _test_database_url() -> str:
    """The URL of the database pytest-django created, for child processes."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(name).resolve()}"
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def child_env(**extra) -> dict:
    env = dict(os.environ, DATABASE_URL=_test_database_url(), PYTHONUNBUFFERED="1")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(extra)
    return env


class ChildProcess:
    """A process of the studio (worker, server) with its output kept in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict):
        ARTIFACTS.mkdir(exist_ok=True)
        self.name = name
        self.log_path = ARTIFACTS / f"{name}.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> None:
        if self.alive():
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def wait_for(predicate, timeout: float, what: str, child: ChildProcess | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            pytest.fail(f"{child.name} exited while waiting for {what}:\n{child.output()[-3000:]}")
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    tail = child.output()[-3000:] if child else ""
    pytest.fail(f"Timed out after {timeout} s waiting for {what}\n{tail}")


# --- Celery workers and beat ------------------------------------------------------


# Short leases, so that a killed training worker is noticed within seconds
# (production: a 30 s heartbeat and a 120 s lease).
WORKER_ENV = {
    "TAILOR_HEARTBEAT_SECONDS": "1",
    "TAILOR_JOB_LEASE_SECONDS": "8",
    "TAILOR_REAPER_INTERVAL_SECONDS": "1",
    # Waiting work whose message is nowhere is sent again after this long.
    "TAILOR_DISPATCH_GRACE_SECONDS": "5",
}

# The production train worker's flags (studio/launcher.py): one job, a fresh
# child per job.
PRODUCTION_TRAIN = ("-c", "1", "--prefetch-multiplier", "1", "--max-tasks-per-child", "1")


class CeleryWorker:
    """A real Celery worker on some queues, against the test database.

    Tests may kill it (SIGKILL, as a crash would) and start it again. `args`
    replace the test profile's pool flags (e.g. the production train
    worker's); `env` adds to WORKER_ENV.
    """

    # Started and not stopped: a fault test pauses these (`paused_workers`)
    # so that its own workers alone serve the queues.
    running: ClassVar[set["CeleryWorker"]] = set()

    def __init__(self, queues: str = "default,train", role: str = "worker", *,
                 args: tuple[str, ...] = ("-c", "1"), env: dict | None = None):  # fmt: skip
        self.queues, self.role = queues, role
        self.args, self.env = args, env or {}
        self.name = f"tests-{role}-{os.getpid()}@localhost"
        self.child: ChildProcess | None = None
        self.starts = 0

    def start(self) -> None:
        from studio.celery import app

        self.starts += 1
        self.child = ChildProcess(
            f"celery-{self.role}-{self.starts}",
            [sys.executable, "-m", "celery", "-A", "studio", "worker", "-Q", self.queues,
             *self.args, "-n", self.name, "--loglevel", "INFO", "--without-mingle",
             "--without-gossip"],
            child_env(**{**WORKER_ENV, **self.env}),
        )  # fmt: skip
        CeleryWorker.running.add(self)

        def answers():
            try:
                return app.control.ping(destination=[self.name], timeout=0.5)
            except Exception:  # a pooled connection a Redis restart left dead
                app.close()
                return False

        wait_for(answers, 60, "the Celery worker to answer a ping", self.child)

    def pool_children(self) -> list[int]:
        """The PIDs of the worker's pool processes (where tasks run)."""
        out = subprocess.run(
            ["pgrep", "-P", str(self.child.process.pid)], capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        return [int(pid) for pid in out.stdout.split()]

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, like a machine dying."""
        self.child.stop(signal.SIGKILL)
        CeleryWorker.running.discard(self)

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
        CeleryWorker.running.discard(self)


@contextlib.contextmanager
def paused_workers(queues: set[str] | None = None):
    """Stop the session's workers that consume any of `queues` (all of them
    when None) for a block and start them again after it, so that the
    workers a fault test starts alone take its messages."""
    paused = [
        worker for worker in CeleryWorker.running
        if queues is None or queues & set(worker.queues.split(","))
    ]  # fmt: skip
    for worker in paused:
        worker.stop()
    try:
        yield
    finally:
        for worker in paused:
            worker.start()


def serves(queue: str) -> bool:
    return any(queue in worker.queues.split(",") for worker in CeleryWorker.running)


class Beat:
    """celery beat: it sends the maintenance task (reaper and dispatcher)
    every TAILOR_REAPER_INTERVAL_SECONDS."""

    def __init__(self, schedule_dir: Path, **env):
        self.schedule = Path(schedule_dir) / "beat-schedule"
        self.env = env
        self.child: ChildProcess | None = None

    def start(self) -> "Beat":
        self.child = ChildProcess(
            "celery-beat",
            [sys.executable, "-m", "celery", "-A", "studio", "beat", "--loglevel", "INFO",
             "-s", str(self.schedule)],
            child_env(**{**WORKER_ENV, **self.env}),
        )  # fmt: skip
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


@contextlib.contextmanager
def studio(tmp_path, *workers: CeleryWorker, pause: frozenset = frozenset(),
           beat_env: dict | None = None):  # fmt: skip
    """Run `workers`, a maintenance worker and beat for a block. The
    session's workers that share a queue with `workers` (or consume one in
    `pause`) are paused meanwhile, so that these alone take its messages,
    and come back after it."""
    queues = {queue for worker in workers for queue in worker.queues.split(",")} | set(pause)
    started: list[CeleryWorker] = []
    beat = Beat(tmp_path, **(beat_env or {}))
    with paused_workers(queues):
        try:
            for worker in workers:
                worker.start()
                started.append(worker)
            if not serves("maintenance"):
                maintenance = CeleryWorker("maintenance", "fault-maintenance")
                maintenance.start()
                started.append(maintenance)
            beat.start()
            yield beat
        finally:
            beat.stop()
            for worker in started:
                worker.stop()


# --- the session's Redis -------------------------------------------------------------


class SessionRedis:
    """The session's Redis (broker, channel layer, flags), for tests that
    stop or kill it. It comes back on its port, empty (the tests' Redis
    keeps nothing on disk); this process's pooled broker connections, dead
    with it, are dropped so that later tests start clean."""

    def __init__(self, server: EmbeddedRedis):
        self.server = server

    def stop(self) -> None:
        self.server.stop()

    def kill(self) -> None:
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait()

    def start(self) -> None:
        from studio.celery import app

        self.server.start()
        app.close()  # the connection pools; the next call opens new ones


# --- faults, and waiting for the recovery ---------------------------------------------


def kill(pid: int, sig=signal.SIGKILL) -> None:
    os.kill(pid, sig)


def gone(pid: int) -> bool:
    """Whether the process has exited (a zombie awaiting its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


class Stopwatch:
    """Seconds from a fault to its recovery, printed for the closing note."""

    def __init__(self, what: str, record_property=None):
        self.what, self.record = what, record_property
        self.started = time.monotonic()

    def lap(self, milestone: str) -> float:
        seconds = round(time.monotonic() - self.started, 1)
        print(f"[recovery] {self.what}: {milestone} after {seconds} s")
        if self.record is not None:
            self.record(f"{self.what}: {milestone}", seconds)
        return seconds


def job_when_finished(job, timeout: float = 300):
    """The job's row once a worker has finished it (any end state)."""
    from jobs.models import FineTuneJob

    return wait_for(
        lambda: (j := FineTuneJob.objects.get(pk=job.pk)).is_finished and j,
        timeout,
        "the job to finish",
    )


def wait_until_step(job, step: int, *, checkpoint: int = 0, timeout: float = 240):
    """Wait until the job runs at `step` or later with a checkpoint at `checkpoint` or later."""
    from jobs.models import FineTuneJob, JobStatus

    def there():
        j = FineTuneJob.objects.get(pk=job.pk)
        return (
            j.status == JobStatus.RUNNING
            and j.current_step >= step
            and j.checkpoints.filter(step__gte=checkpoint).exists()
        )

    wait_for(there, timeout, f"step {step} with a checkpoint at {checkpoint} or later")


# --- the browser ----------------------------------------------------------------------


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def fits_the_screen(page) -> bool:
    """Whether the page needs no sideways scrolling (at a phone's 390 px, say)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def log_in(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
