"""The README's curl session, run as written against a live studio and real workers.

Only two things change: the studio's address, and the job is made short
(12 steps instead of the Quick preset's 150) to keep the suite quick.
"""

import os
import re
import subprocess

import pytest

from studio.services.tokens import create_token
from tests.samples import ROOT

QUICK_JOB = '"preset": "quick"}'


def readme_session() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("### A complete session with curl", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_session_is_one_block_that_trains_a_quick_job():
    script = readme_session()
    assert script.startswith("STUDIO=http://127.0.0.1:8000\n")
    assert script.count(QUICK_JOB) == 1


@pytest.mark.parametrize(
    "endpoint",
    ["/api/v1/datasets/", "/api/v1/jobs/", "/events/", "/api/v1/generations/"],
    ids=["datasets", "jobs", "events", "generations"],
)
def test_the_readme_session_calls(endpoint):
    assert endpoint in readme_session()


@pytest.mark.timeout(420)
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker", "demo_models")
def test_the_readme_curl_session_uploads_trains_follows_and_generates(alice, live_server_url):
    script = readme_session()
    script = script.replace("STUDIO=http://127.0.0.1:8000", f"STUDIO={live_server_url}", 1)
    script = script.replace(QUICK_JOB, '"preset": "quick", "hyperparameters": {"max_steps": 12}}')
    env = {**os.environ, "TOKEN": create_token(alice, "readme").secret}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.splitlines()
    assert any("Succeeded" in line or "succeeded" in line for line in lines), done.stdout
    answers = [line for line in lines if line.startswith(("tailor-tiny: ", "ft:tailor-tiny:"))]
    assert [a.split(": ")[0].startswith("ft:") for a in answers] == [False, True], done.stdout
    assert '"status":' in done.stdout and '"metrics":' in done.stdout
