"""The tokens-per-day limit (quotas/services/limits.py `check_generation`): once
a user was served their day's tokens (UTC), a new generation is refused at
every door in its own shape, naming the limit, the use and when it resets.
Real database and Redis; no worker (nothing refused reaches one)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.utils import timezone

from quotas.models import QuotaOverride
from quotas.services.limits import QuotaExceeded, check_generation, limits_for
from serving.models import Generation, GenerationStatus
from studio.asgi import application
from studio.services.tokens import create_token
from tests.builders import api_client
from tests.live import run_in_own_loop

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_models")]

CHAT = {"model": "tailor-tiny", "messages": [{"role": "user", "content": "Where is my sofa?"}]}


def served(owner, prompt: int, completion: int, at: datetime | None = None) -> Generation:
    return Generation.objects.create(
        owner=owner, source="api", base_model_id="tailor-tiny", task="causal-lm",
        panes=[{"model": "tailor-tiny", "label": "A", "job": None}], text="hi",
        status=GenerationStatus.SUCCEEDED, finished_at=at or timezone.now(),
        prompt_tokens=prompt, completion_tokens=completion,
    )  # fmt: skip


def refusal(used: int, limit: int, now: datetime) -> str:
    from jobs.human import human_duration

    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return (
        f"Daily token limit reached: you were served {used:,} tokens today, your limit is "
        f"{limit:,} a day. It resets at midnight UTC, in "
        f"{human_duration((midnight - now).total_seconds())}."
    )


def test_the_days_prompt_and_completion_tokens_count_and_yesterdays_do_not(alice, bob):
    QuotaOverride.objects.create(user=alice, tokens_per_day=1_000)
    now = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)
    served(alice, 300, 200, at=now - timedelta(hours=21))  # yesterday, at 23:30
    served(alice, 600, 350, at=now - timedelta(hours=2))
    served(bob, 5_000, 5_000, at=now - timedelta(hours=1))  # not hers
    check_generation(alice, now=now)  # 950 of 1,000: one more may start
    served(alice, 40, 10, at=now - timedelta(minutes=1))
    with pytest.raises(QuotaExceeded) as refused:
        check_generation(alice, now=now)
    assert refused.value.limit == "tokens_per_day"
    assert refused.value.message == (
        "Daily token limit reached: you were served 1,000 tokens today, your limit is 1,000 "
        "a day. It resets at midnight UTC, in 3 h 30 min."
    )
    check_generation(bob, now=now)  # no limit for bob


def test_the_limit_comes_from_the_settings_or_the_most_generous_group(alice, settings):
    settings.TAILOR_QUOTA_TOKENS_PER_DAY = 500
    assert limits_for(alice).tokens_per_day == 500
    group = Group.objects.create(name="heavy users")
    alice.groups.add(group)
    QuotaOverride.objects.create(group=group, tokens_per_day=0)  # unlimited
    assert limits_for(alice).tokens_per_day is None


@pytest.fixture
def day_used_up(alice):
    QuotaOverride.objects.create(user=alice, tokens_per_day=100)
    served(alice, 80, 20)
    return alice


def test_the_native_api_refuses_a_generation_with_403(day_used_up):
    response = api_client(day_used_up).post(
        "/api/v1/generations/",
        {"models": ["tailor-tiny"], "messages": CHAT["messages"]},
        format="json",
    )
    assert response.status_code == 403
    body = response.json()
    message = body["error"]["message"]
    assert body == {"error": {"code": "quota_exceeded", "message": message}}
    assert message.startswith(
        "Daily token limit reached: you were served 100 tokens today, your limit is 100 a day. "
        "It resets at midnight UTC, in "
    )
    assert Generation.objects.filter(owner=day_used_up).count() == 1


def test_v1_chat_completions_refuses_in_openais_shape(client, day_used_up):
    secret = create_token(day_used_up, "tests").secret
    now = timezone.now()
    response = client.post(
        "/v1/chat/completions", json.dumps(CHAT), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )  # fmt: skip
    assert response.status_code == 403
    error = response.json()["error"]
    # The reset is minutes away: the sentence is the one of the moment it answered.
    assert error["message"] in {refusal(100, 100, now), refusal(100, 100, timezone.now())}
    assert {k: v for k, v in error.items() if k != "message"} == {
        "type": "insufficient_quota", "param": None, "code": "quota_exceeded",
    }  # fmt: skip
    assert Generation.objects.filter(owner=day_used_up).count() == 1


# The socket's consumer reads the database from a thread of its own.
@pytest.mark.django_db(transaction=True)
def test_the_playground_says_why_under_the_models(day_used_up):
    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/playground/")
        socket.scope["user"] = day_used_up
        socket.scope["headers"] = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1")]
        await socket.connect(timeout=10)
        await socket.send_json_to(
            {"action": "run", "models": ["tailor-tiny"], "prompt": "Where is my sofa?"}
        )
        answer = await socket.receive_json_from(timeout=20)
        await socket.disconnect()
        return answer

    answer = run_in_own_loop(scenario)
    assert answer["type"] == "invalid"
    assert list(answer["errors"]) == ["models"]
    assert answer["errors"]["models"].startswith(
        "Daily token limit reached: you were served 100 tokens today"
    )
    assert Generation.objects.filter(owner=day_used_up).count() == 1
