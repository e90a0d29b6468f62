"""A failed job as its owner and as an operator see it.

Everyone reads a plain sentence: the job's page, the REST API (the job and
its events), the OpenAI fine-tuning API and the page's websocket. Only staff
are shown the exception and its traceback, where a server path may show.
The failures are real: `run_job` meets a configuration it cannot read, or a
base model whose folder is not there.
"""

import json

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils.html import escape

from jobs import worker
from jobs.models import FineTuneJob, JobStatus
from studio.asgi import application
from studio.services.tokens import create_token
from tests.builders import api_client, make_job, ready_sample
from tests.live import run_in_own_loop

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the run's lease keeper has its own connection
    pytest.mark.usefixtures("demo_models"),
]

UNEXPECTED = (
    "Training stopped with an unexpected error in the worker. Retry the job; if it "
    "fails again, tell an operator: they can see the error on this job's page."
)
NO_MODEL = (
    "The base model could not be loaded on the worker; an operator can see why on the job's page."
)


def queued_job(owner) -> FineTuneJob:
    job = make_job(owner, ready_sample(owner))
    FineTuneJob.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    return job


def run_to_failure(job) -> FineTuneJob:
    assert worker.run_job(str(job.pk), "here") == "failed"
    job.refresh_from_db()
    return job


def socket_events(user, job) -> list[dict]:
    """The events the job page's websocket replays to `user`."""

    async def scenario():
        socket = WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/")
        socket.scope["user"] = user
        socket.scope["headers"] = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]
        assert (await socket.connect(timeout=10))[0]
        await socket.send_json_to({"after_step": -1})
        answer = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return answer

    answer = run_in_own_loop(scenario)
    assert answer["type"] == "points"
    assert answer["summary"]["status"] == "failed"
    return answer["events"]


def what_they_read(user, job) -> dict[str, str]:
    """Everything `user` can read of the job, by where they read it."""
    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    api = api_client(user)
    secret = create_token(user, "openai").secret
    openai = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    return {
        "page": page.content.decode(),
        "api job": json.dumps(api.get(f"/api/v1/jobs/{job.pk}/").json()),
        "api events": json.dumps(api.get(f"/api/v1/jobs/{job.pk}/events/").json()),
        "openai job": json.dumps(
            openai.get(f"/v1/fine_tuning/jobs/ftjob-{job.pk.hex}", **auth).json()
        ),
        "openai events": json.dumps(
            openai.get(f"/v1/fine_tuning/jobs/ftjob-{job.pk.hex}/events", **auth).json()
        ),
        "websocket": json.dumps(socket_events(user, job)),
    }


def test_an_unexpected_error_is_a_plain_sentence_and_its_exception_is_for_staff(alice, olga):
    job = queued_job(alice)
    # A row edited into a configuration the runner cannot read: an error nobody foresaw.
    config = {**job.config, "training": {**job.config["training"], "unknown_knob": 1}}
    FineTuneJob.objects.filter(pk=job.pk).update(config=config)
    job = run_to_failure(job)
    assert (job.error_code, job.error_message) == ("training", UNEXPECTED)
    exception = "ConfigError: training.unknown_knob: is not a known field."
    assert exception in job.error_traceback

    for where, text in what_they_read(alice, job).items():
        assert "ConfigError" not in text, where
        assert "Traceback" not in text, where
    seen = what_they_read(alice, job)
    assert escape(UNEXPECTED) in seen["page"]
    assert json.loads(seen["api job"])["error"] == {"code": "training", "message": UNEXPECTED}
    assert json.loads(seen["openai job"])["error"] == {
        "code": "training",
        "message": UNEXPECTED,
        "param": None,
    }
    assert json.loads(seen["websocket"])[-1]["message"] == UNEXPECTED
    assert json.loads(seen["api events"])["results"][-1]["message"] == UNEXPECTED

    staff = what_they_read(olga, job)
    assert escape(UNEXPECTED) in staff["page"]
    assert "Traceback (operators only)" in staff["page"]
    assert escape(exception) in staff["page"]
    error = json.loads(staff["api job"])["error"]
    assert error["message"] == UNEXPECTED
    assert error["traceback"] == job.error_traceback
    # Events are everyone's: plain for staff too.
    assert "ConfigError" not in staff["websocket"]


@pytest.mark.training
def test_a_server_path_in_a_failure_is_shown_to_staff_only(alice, olga, settings, tmp_path):
    job = queued_job(alice)
    settings.MODELS_ROOT = tmp_path / "no-models-here"
    job = run_to_failure(job)
    assert (job.error_code, job.error_message) == ("model_load", NO_MODEL)
    missing = str(tmp_path / "no-models-here")
    assert f"there is no model folder at {missing}" in job.error_traceback

    for where, text in what_they_read(alice, job).items():
        assert missing not in text, where
    assert escape(NO_MODEL) in what_they_read(alice, job)["page"]

    staff = what_they_read(olga, job)
    assert missing in staff["page"]
    assert missing in json.loads(staff["api job"])["error"]["traceback"]
