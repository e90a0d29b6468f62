"""Shared test set-up: a real Redis, a real Celery worker, a live ASGI server,
headless Chromium, and the personas alice (analyst), bob (another analyst)
and olga (an operator, staff).

The settings read REDIS_URL when they load, so this file starts the test
Redis and only then names the settings module (pyproject.toml leaves it out
on purpose). Nothing here replaces Redis, the channel layer or the database
with a fake; the only change for speed is a fast password hasher.

This file holds fixtures and pytest hooks only: the processes they start
come from tests/processes.py, and tests build their objects with
tests/builders.py (imported here inside fixtures, once the settings load).
"""

import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from studio.redis_server import EmbeddedRedis, free_port
from tests.processes import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    CeleryWorker,
    ChildProcess,
    SessionRedis,
    child_env,
    paused_workers,
    wait_for,
)

# Property-based tests (hypothesis): no per-example deadline (two shared cores
# make timings noise), no example database in the tree; each test sizes its
# own max_examples so that all of them stay near a minute. CI runs the same
# examples every time, so a failure there can be replayed.
hypothesis_settings.register_profile("tailor", deadline=None, database=None, print_blob=True)
hypothesis_settings.register_profile("tailor-ci", parent=hypothesis_settings.get_profile("tailor"),
                                     derandomize=True)  # fmt: skip
hypothesis_settings.load_profile("tailor-ci" if os.environ.get("CI") == "true" else "tailor")

_redis: EmbeddedRedis | None = None
_scratch: Path | None = None


def pytest_configure(config):
    global _redis, _scratch
    _scratch = Path(tempfile.mkdtemp(prefix="tailor-tests-"))
    _redis = EmbeddedRedis(_scratch / "redis", free_port(), durable=False)
    os.environ["REDIS_URL"] = _redis.start()
    os.environ["MEDIA_ROOT"] = str(_scratch / "media")
    os.environ["TAILOR_FAST_PASSWORD_HASHER"] = "1"
    # No test reaches a tracker's server: W&B writes its runs into the job's folder.
    os.environ["TAILOR_WANDB_MODE"] = "offline"
    # Playwright's sync API runs an event loop in the test thread; Django
    # would refuse the fixtures' database calls there. Test process only:
    # child_env() removes it, so the servers under test keep the guard.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    from django.conf import settings

    settings.DATABASES  # noqa: B018  (loads the settings now, with the test Redis)


_DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup"}
# Fixtures that start real processes, and the marker each implies: a test's
# markers follow from what it uses, so the fast lane (`make test-fast`, no
# `integration`, `browser`, `training` or `faults`) never waits on a worker.
_MARKED_FIXTURES = {
    "celery_worker": "integration",
    "celery_worker_process": "integration",
    "inference_worker_process": "integration",
    "evaluation_worker_process": "integration",
    "maintenance_worker_process": "integration",
    "live_server_url": "integration",
    "browser": "browser",
    "page": "browser",
    "phone": "browser",
}


def pytest_collection_modifyitems(config, items):
    """Which pass runs what. The SQLite pass runs everything but the tests
    marked `postgresql` (they restart PostgreSQL itself). The PostgreSQL pass
    (`TAILOR_TESTS_DATABASE_ONLY=1`) keeps the tests that touch the database,
    less the fault tests not marked `postgresql`, the browser tests and the
    real training runs: the rest (file parsing, the training engine,
    settings), the process faults, the pages as a browser drives them and
    what a trained model's files and figures are ran in the SQLite pass,
    and what they test does not depend on the database (the same views and
    queries run under the API and page tests of both passes; the ledger's
    calls a run makes are tested on PostgreSQL without training, and fault
    7 trains through a PostgreSQL restart)."""
    from django.conf import settings

    on_postgresql = "postgresql" in settings.DATABASES["default"]["ENGINE"]
    database_only = os.environ.get("TAILOR_TESTS_DATABASE_ONLY") == "1"

    def uses_database(item) -> bool:
        return item.get_closest_marker("django_db") is not None or bool(
            _DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        )

    def wanted(item) -> bool:
        if item.get_closest_marker("postgresql") is not None:
            return on_postgresql
        if not database_only:
            return True
        return (
            uses_database(item)
            and item.get_closest_marker("faults") is None
            and item.get_closest_marker("browser") is None
            and item.get_closest_marker("training") is None
        )

    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & set(_MARKED_FIXTURES):
            item.add_marker(_MARKED_FIXTURES[fixture])

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
    from studio.operator_permissions import restore_operators_group

    seed_catalog()
    restore_operators_group()  # the Operators group, as the migrations make it


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


@pytest.fixture
def alice_api(alice):
    from tests.builders import api_client

    return api_client(alice)


@pytest.fixture
def bob_api(bob):
    from tests.builders import api_client

    return api_client(bob)


# --- processes: worker and live server against the test database ---------------


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


def _browser_page(browser, request, *, width: int, height: int, suffix: str = ""):
    """A page of its own context, screenshotted when its test fails."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}{suffix}.png"), full_page=True)
    context.close()


@pytest.fixture
def page(browser, request):
    yield from _browser_page(browser, request, width=1280, height=900)


@pytest.fixture
def no_training_worker():
    """No session worker takes training messages during the test: a job that
    a page queues stays queued until the test moves it as a worker would."""
    with paused_workers({"train"}):
        yield


@pytest.fixture
def phone(browser, request):
    """A page 390 px wide, a phone's."""
    yield from _browser_page(browser, request, width=390, height=844, suffix="-phone")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def demo_models(django_db_blocker):
    """The offline demo models, generated once (idempotent, like `make run`)."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("make_demo_models")
    from jobs import demo_models as module

    return module
