"""Fixtures of the job tests.

pytest may load this file before tests/conftest.py has configured the
settings (when a path under tests/jobs/ is named on the command line), so
the builders are imported inside the fixture.
"""

import pytest

from tests.processes import paused_workers
from tests.s3 import s3, s3_server  # noqa: F401  (tests of workers on other machines)


@pytest.fixture
def routing(alice, demo_models):
    """Alice's ready support-routing set, which suits tailor-tiny."""
    from tests.builders import ready_sample

    return ready_sample(alice)


@pytest.fixture(scope="module")
def no_training_worker_in_module():
    """The session's training workers stopped for a whole module whose tests
    queue real jobs (a transaction=True database) and must find them queued:
    a worker an earlier test started would claim them. Once per module, not
    per test: a worker takes seconds to start again."""
    with paused_workers({"train"}):
        yield
