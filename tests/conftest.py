"""Shared test set-up: a real Redis, a real Celery worker, a live ASGI server,
headless Chromium, and the personas alice (analyst), bob (another analyst)
and olga (an operator, staff).

The settings read REDIS_URL when they load, so this file starts the test
Redis and only then names the settings module (pyproject.toml leaves it out
on purpose). Nothing here replaces Redis, the channel layer or the database
with a fake; the only change for speed is a fast password hasher.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from studio.redis_server import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
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
PASSWORD = "correct horse battery staple"

_redis: EmbeddedRedis | None = None
_scratch: Path | None = None


def pytest_configure(config):
    global _redis, _scratch
    _scratch = Path(tempfile.mkdtemp(prefix="tailor-tests-"))
    _redis = EmbeddedRedis(_scratch / "redis", free_port(), durable=False)
    os.environ["REDIS_URL"] = _redis.start()
    os.environ["MEDIA_ROOT"] = str(_scratch / "media")
    os.environ["TAILOR_FAST_PASSWORD_HASHER"] = "1"
    # Playwright's sync API runs an event loop in the test thread; Django
    # would refuse the fixtures' database calls there. Test process only:
    # child_env() removes it, so the servers under test keep the guard.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    from django.conf import settings

    settings.DATABASES  # noqa: B018  (loads the settings now, with the test Redis)


_DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup"}


def uses_database(item) -> bool:
    return item.get_closest_marker("django_db") is not None or bool(
        _DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
    )


def pytest_collection_modifyitems(config, items):
    """Which pass runs what. The SQLite pass runs everything but the tests
    marked `postgresql` (they restart PostgreSQL itself). The PostgreSQL pass
    (`TAILOR_TESTS_DATABASE_ONLY=1`) keeps the tests that touch the database,
    less the fault tests not marked `postgresql`: the rest (file parsing, the
    training engine, settings) and the process faults ran in the SQLite pass,
    and what they test does not depend on the database."""
    from django.conf import settings

    on_postgresql = "postgresql" in settings.DATABASES["default"]["ENGINE"]
    database_only = os.environ.get("TAILOR_TESTS_DATABASE_ONLY") == "1"

    def wanted(item) -> bool:
        if item.get_closest_marker("postgresql") is not None:
            return on_postgresql
        if not database_only:
            return True
        return uses_database(item) and item.get_closest_marker("faults") is None

    kept = [item for item in items if wanted(item)]
    dropped = [item for item in items if not wanted(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_unconfigure(config):
    if _redis is not None:
        _redis.stop()
    if _scratch is not None:
        shutil.rmtree(_scratch, ignore_errors=True)


# --- data every database test starts with ---------------------------------------


@pytest.fixture(autouse=True)
def _model_catalog(request):
    """The catalog's default entries, as the data migration writes them.

    A transactional test empties every table when it ends, migrations' rows
    included; the next database test gets them back from here.
    """
    if request.node.get_closest_marker("django_db") is None:
        return
    request.getfixturevalue("django_db_setup")
    from jobs.services.catalog import seed_catalog

    seed_catalog()


# --- personas -----------------------------------------------------------------


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", PASSWORD)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", PASSWORD)


@pytest.fixture
def olga(django_user_model):
    return django_user_model.objects.create_user(
        "olga", "olga@example.com", PASSWORD, is_staff=True
    )


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob):
    from django.test import Client

    other = Client()
    other.force_login(bob)
    return other


def api_client(user):
    """A DRF test client that sends a fresh API token of `user`."""
    from rest_framework.test import APIClient

    from studio.services.tokens import create_token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_token(user, 'tests').secret}")
    return client


@pytest.fixture
def alice_api(alice):
    return api_client(alice)


@pytest.fixture
def bob_api(bob):
    return api_client(bob)


# --- processes: worker and live server against the test database ---------------


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


# Short leases, so that a killed training worker is noticed within seconds
# (production: a 30 s heartbeat and a 120 s lease).
WORKER_ENV = {
    "TAILOR_HEARTBEAT_SECONDS": "1",
    "TAILOR_JOB_LEASE_SECONDS": "8",
    "TAILOR_REAPER_INTERVAL_SECONDS": "1",
    # Waiting work whose message is nowhere is sent again after this long.
    "TAILOR_DISPATCH_GRACE_SECONDS": "5",
}


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


@pytest.fixture(scope="session")
def test_redis() -> SessionRedis:
    return SessionRedis(_redis)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """The worker of the default and train queues (the one tests may kill)."""
    worker = CeleryWorker("default,train", "worker")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def inference_worker_process(django_db_setup, django_db_blocker):
    """The worker of the infer queue, as `make run` has one: it keeps models
    loaded, and its evaluations never hold up training or validation."""
    worker = CeleryWorker("infer", "infer")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def evaluation_worker_process(django_db_setup, django_db_blocker):
    """The worker of the evaluate queue: evaluations never wait behind, or
    hold up, the playground's requests."""
    worker = CeleryWorker("evaluate", "evaluate")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def maintenance_worker_process(django_db_setup, django_db_blocker):
    """The worker of the maintenance queue (the reaper and dispatcher that beat sends)."""
    worker = CeleryWorker("maintenance", "maintenance")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def celery_worker(
    celery_worker_process, inference_worker_process, evaluation_worker_process,
    maintenance_worker_process,
):  # fmt: skip
    """The name of a running real Celery worker; every queue is served (test database)."""
    return celery_worker_process.name


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, django_db_blocker):
    """The studio's real ASGI app under uvicorn, against the test database."""
    port = free_port()
    server = ChildProcess(
        "uvicorn",
        [sys.executable, "-m", "uvicorn", "studio.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--timeout-graceful-shutdown", "2"],
        child_env(),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            with urllib.request.urlopen(f"{url}/login/", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    wait_for(answers, 60, "the live server", server)
    yield url
    server.stop()


# --- browser --------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium).")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def log_in(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture(scope="session")
def demo_models(django_db_blocker):
    """The offline demo models, generated once (idempotent, like `make run`)."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("make_demo_models")
    from jobs import demo_models as module

    return module
