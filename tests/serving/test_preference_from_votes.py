"""Votes become a preference dataset: which votes are used, the page that
shows them for review, and the dataset it makes (with its provenance).

Real database; the comparisons are rows as a finished run leaves them,
voted on through the services (no worker: the answers are not under test).
The dataset made is validated here, as a worker would.
"""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, AuditEntry
from datasets_app.models import Dataset, describe_provenance
from datasets_app.services import run_validation
from serving.models import Generation, GenerationSource, GenerationStatus, Vote
from serving.services import generations, preference_data
from serving.services.generations import GenerationRequest, check_request
from tests.builders import api_client, finished_job, ready_sample

pytestmark = pytest.mark.django_db

PAGE = "/playground/preference-dataset/"


@pytest.fixture
def models(alice, demo_models):
    """Two of alice's fine-tuned models of tailor-tiny: (first, second)."""
    dataset = ready_sample(alice)
    first = finished_job(alice, dataset, name="First")
    second = finished_job(alice, dataset, name="Second")
    return first.fine_tuned_model, second.fine_tuned_model


def answered(owner, answers: dict[str, str | None], *, prompt="Where is my parcel?", **request):
    """A finished comparison: `answers` {model: its answer, None for a failed pane}."""
    if "text" not in request:
        request.setdefault("messages", [{"role": "user", "content": prompt}])
    checked = check_request(owner, GenerationRequest(models=list(answers), **request))
    generation = generations.create_generation(owner, checked, source=GenerationSource.PLAYGROUND)
    results = [
        {"text": text, "finish_reason": "stop"}
        if text is not None
        else {"text": "", "finish_reason": "error", "error": "The model failed."}
        for text in answers.values()
    ]
    Generation.objects.filter(pk=generation.pk).update(
        status=GenerationStatus.SUCCEEDED, results=results
    )
    generation.refresh_from_db()
    return generation


def voted(owner, answers: dict, winner: str | None, *, days_ago: int = 0, **request) -> Vote:
    """`owner` votes on a comparison: `winner` a model of `answers`, or None for a tie."""
    generation = answered(owner, answers, **request)
    first, second = list(answers)
    choice = "tie" if winner is None else ("a" if winner == first else "b")
    vote = generations.record_vote(owner, generation, first, second, choice)
    if days_ago:
        Vote.objects.filter(pk=vote.pk).update(created_at=timezone.now() - timedelta(days_ago))
    return vote


def selection(user, **query):
    return preference_data.select_pairs(preference_data.read_filters(user, query))


# --- choosing the votes ------------------------------------------------------------------------


def test_each_decided_vote_becomes_a_row_with_the_winner_chosen(alice, models):
    first, second = models
    voted(alice, {first: "It left today.", second: "No idea."}, first)
    # The winner on the right this time, and the pair shown the other way round.
    voted(alice, {second: "Ask the courier.", first: "Tomorrow."}, first, prompt="When?")

    chosen = selection(alice)
    assert [pair.as_row() for pair in chosen.pairs] == [
        {
            "prompt": [{"role": "user", "content": "Where is my parcel?"}],
            "chosen": "It left today.",
            "rejected": "No idea.",
        },
        {
            "prompt": [{"role": "user", "content": "When?"}],
            "chosen": "Tomorrow.",
            "rejected": "Ask the courier.",
        },
    ]
    assert (chosen.ties, chosen.skipped_total) == (0, 0)


def test_a_raw_prompt_is_one_user_turn_and_a_system_message_is_kept(alice, models):
    first, second = models
    voted(alice, {first: " upon a time", second: " and then"}, second, text="Once")
    voted(
        alice,
        {first: "Hello!", second: "Hi."},
        first,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Greet me"},
        ],
    )
    prompts = [pair.prompt for pair in selection(alice).pairs]
    assert prompts == [
        [{"role": "user", "content": "Once"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Greet me"}],
    ]


def test_ties_failed_identical_and_classifier_votes_are_left_out_and_counted(alice, models):
    first, second = models
    voted(alice, {first: "Yes.", second: "No."}, first)
    voted(alice, {first: "Maybe.", second: "Perhaps."}, None)
    voted(alice, {first: "Fine.", second: None}, first)
    voted(alice, {first: "Same answer.", second: " Same answer. "}, second)
    late_system = [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Be kind."}]
    voted(alice, {first: "Hello.", second: "Hey."}, first, messages=late_system)
    labels = voted(alice, {first: "billing", second: "shipping"}, first)
    Generation.objects.filter(pk=labels.generation_id).update(task="sequence-classification")

    chosen = selection(alice)
    assert [pair.chosen for pair in chosen.pairs] == ["Yes."]
    assert chosen.ties == 1
    assert chosen.skipped == {"missing": 1, "identical": 1, "classification": 1, "prompt": 1}
    assert chosen.skipped_reasons == [
        ("an answer is missing or failed", 1),
        ("both answers are the same", 1),
        ("a classifier's labels, not answers", 1),
        ("the prompt does not end with a user message", 1),
    ]


def test_the_filters_choose_a_pair_a_model_and_days(alice, models):
    first, second = models
    voted(alice, {first: "A1", second: "B1"}, first, days_ago=10)
    voted(alice, {first: "A2", second: "B2"}, second, days_ago=3)
    voted(alice, {"tailor-tiny": "base", first: "A3"}, first)

    def chosen(**query):
        return [pair.chosen for pair in selection(alice, **query).pairs]

    assert chosen() == ["A1", "B2", "A3"]
    assert chosen(models=f"{second} vs {first}") == ["A1", "B2"]
    assert chosen(models=second) == ["A1", "B2"]
    assert chosen(models="tailor-tiny") == ["A3"]
    today = timezone.localdate()
    assert chosen(since=(today - timedelta(5)).isoformat()) == ["B2", "A3"]
    assert chosen(until=(today - timedelta(5)).isoformat()) == ["A1"]


def test_filters_that_cannot_be_read_say_which_and_why(alice):
    with pytest.raises(preference_data.PreferenceDataError) as refused:
        preference_data.read_filters(alice, {"since": "last week"})
    assert (refused.value.field, refused.value.message) == (
        "since",
        "From: 'last week' is not a date; write it as 2026-12-02.",
    )
    with pytest.raises(preference_data.PreferenceDataError) as refused:
        preference_data.read_filters(alice, {"since": "2026-12-02", "until": "2026-11-30"})
    assert refused.value.message == "To: 30 Nov 2026 is before From (2 Dec 2026)."


def test_a_user_only_ever_reads_their_own_votes(alice, bob, models):
    first, second = models
    voted(alice, {first: "Alice's A", second: "Alice's B"}, first)
    assert selection(bob).pairs == []
    with pytest.raises(preference_data.PreferenceDataError) as refused:
        preference_data.read_filters(bob, {"voter": "alice"})
    assert refused.value.message == "You can make a dataset from your own votes only."


def test_staff_may_choose_a_voter_and_using_their_votes_is_audited(alice, olga, models):
    first, second = models
    vote = voted(alice, {first: "Good.", second: "Bad."}, first)
    assert selection(olga).pairs == []
    filters = preference_data.read_filters(olga, {"voter": "alice"})
    assert [pair.vote_id for pair in preference_data.select_pairs(filters).pairs] == [vote.pk]

    dataset = preference_data.create_preference_dataset(olga, filters, name="Alice's votes")
    assert dataset.owner == olga
    assert dataset.provenance["filters"]["voter"] == "alice"
    entry = AuditEntry.objects.get(action=Action.EXPORT)
    assert (entry.actor, entry.owner_name, entry.target_name) == (olga, "alice", "votes of alice")
    assert entry.detail == {"dataset": str(dataset.pk), "votes": [vote.pk]}
    assert (entry.target_type, entry.target_id) == ("serving.vote", "")


# --- the dataset -------------------------------------------------------------------------------


def test_creating_makes_a_preference_dataset_with_its_provenance(alice, models):
    first, second = models
    earlier = voted(alice, {first: "It left today.", second: "No idea."}, first, days_ago=2)
    later = voted(alice, {first: "Soon.", second: "Call us <b>now</b>."}, second)
    voted(alice, {first: "Hm.", second: "Hmm."}, None)
    filters = preference_data.read_filters(alice, {"models": f"{first} vs {second}"})

    dataset = preference_data.create_preference_dataset(alice, filters, name="From votes")
    rows = [json.loads(line) for line in dataset.source.open("rb").read().splitlines()]
    assert rows == [
        {
            "prompt": [{"role": "user", "content": "Where is my parcel?"}],
            "chosen": "It left today.",
            "rejected": "No idea.",
        },
        {
            "prompt": [{"role": "user", "content": "Where is my parcel?"}],
            "chosen": "Call us <b>now</b>.",
            "rejected": "Soon.",
        },
    ]
    today = timezone.localdate()
    assert dataset.provenance == {
        "kind": "votes",
        "votes": [earlier.pk, later.pk],
        "models": sorted([first, second]),
        "filters": {
            "models": [first, second],
            "since": None,
            "until": None,
            "voter": "alice",
        },
        "voters": 1,
        "pairs": 2,
        "ties_left_out": 1,
        "skipped": {"missing": 0, "identical": 0, "classification": 0, "prompt": 0},
        "first_vote": (today - timedelta(2)).isoformat(),
        "last_vote": today.isoformat(),
    }
    assert (dataset.name, dataset.requested_format) == ("From votes", "preference")

    # Validated as any upload: a ready preference dataset.
    assert run_validation(str(dataset.pk), dataset.revision) == "ready"
    dataset.refresh_from_db()
    assert (dataset.format, dataset.task, dataset.num_rows) == ("preference", "preference", 2)


def test_no_usable_vote_makes_no_dataset(alice, models):
    first, second = models
    voted(alice, {first: "Hm.", second: "Hmm."}, None)
    filters = preference_data.read_filters(alice, {})
    with pytest.raises(preference_data.PreferenceDataError) as refused:
        preference_data.create_preference_dataset(alice, filters)
    assert refused.value.message == (
        "None of the votes that match can be used (1 tie): vote A or B on pairs of "
        "different answers, or widen the filters."
    )
    assert not Dataset.objects.exclude(provenance={}).exists()


def test_the_provenance_reads_as_a_sentence():
    provenance = {
        "kind": "votes",
        "votes": list(range(42)),
        "models": ["ft:tailor-tiny:alice::a", "ft:tailor-tiny:alice::b"],
        "voters": 1,
        "ties_left_out": 3,
        "first_vote": "2026-11-30",
        "last_vote": "2026-12-02",
    }
    assert describe_provenance(provenance) == (
        "Made from 42 votes on ft:tailor-tiny:alice::a vs ft:tailor-tiny:alice::b, "
        "30 Nov–2 Dec 2026; 3 ties left out."
    )
    assert describe_provenance({}) == ""


# --- the page ----------------------------------------------------------------------------------


def test_the_playground_offers_to_make_a_preference_dataset_once_there_are_votes(
    alice, alice_client, models
):
    first, second = models
    assert "Make a preference dataset" not in alice_client.get("/playground/").content.decode()
    voted(alice, {first: "A", second: "B"}, first)
    page = alice_client.get("/playground/").content.decode()
    assert f'href="{PAGE}" data-testid="make-preference-dataset"' in page


def test_the_review_shows_both_answers_side_by_side_escaped(alice, alice_client, models):
    first, second = models
    voted(alice, {first: "<script>alert(1)</script>", second: "Plain."}, first)
    voted(alice, {first: "X", second: "Y"}, None)
    response = alice_client.get(PAGE)
    assert response.status_code == 200
    page = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert page.count('data-testid="preference-pair"') == 1
    assert 'data-testid="preference-chosen"' in page and "Plain." in page
    assert "1 pair</strong> will be used" in page
    assert "1 tie left out" in page


def test_a_filter_change_from_htmx_gets_the_review_alone(alice, alice_client, models):
    first, second = models
    voted(alice, {first: "A", second: "B"}, first)
    response = alice_client.get(
        PAGE, {"models": "tailor-tiny"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="preference-review"
    )
    page = response.content.decode()
    assert page.strip().startswith('<section id="preference-review"')
    assert 'data-testid="preference-none"' in page
    assert "No votes match these filters" in page


def test_the_review_is_paginated(alice, alice_client, models):
    first, second = models
    for number in range(12):
        voted(alice, {first: f"good {number}", second: f"bad {number}"}, first)
    page = alice_client.get(PAGE).content.decode()
    assert page.count('data-testid="preference-pair"') == 10
    assert "Page 1 of 2" in page
    second_page = alice_client.get(PAGE, {"page": 2}).content.decode()
    assert second_page.count('data-testid="preference-pair"') == 2


def test_a_bad_date_is_answered_in_a_sentence_not_an_error_page(alice_client):
    response = alice_client.get(PAGE, {"until": "soon"})
    assert response.status_code == 422
    assert (
        "To: &#x27;soon&#x27; is not a date; write it as 2026-12-02." in response.content.decode()
    )


def test_create_redirects_to_the_new_dataset_whose_page_and_api_show_its_provenance(
    alice, alice_client, models
):
    first, second = models
    voted(alice, {first: "Yes.", second: "No."}, first)
    response = alice_client.post(PAGE, {"models": f"{first} vs {second}", "name": "Mine"})
    dataset = Dataset.objects.exclude(provenance={}).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("dataset-detail", args=[dataset.pk])
    assert (dataset.name, dataset.owner, dataset.provenance["pairs"]) == ("Mine", alice, 1)
    day = timezone.localdate()
    pair = " vs ".join(sorted(models))
    sentence = f"Made from 1 vote on {pair}, {day.day} {day:%b %Y}."
    assert sentence in alice_client.get(response["Location"]).content.decode()
    api = api_client(alice).get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert api["provenance"] == dataset.provenance


def test_create_without_usable_votes_says_so_and_makes_nothing(alice_client):
    response = alice_client.post(PAGE, {"name": "Nothing"})
    assert response.status_code == 422
    assert "No votes match these filters" in response.content.decode()
    assert not Dataset.objects.exclude(provenance={}).exists()


def test_bob_sees_none_of_alices_votes_and_cannot_name_her(alice, bob_client, models):
    first, second = models
    voted(alice, {first: "Alice's secret answer", second: "Other"}, first)
    page = bob_client.get(PAGE).content.decode()
    assert "Alice&#x27;s secret answer" not in page and "Alice's secret answer" not in page
    assert first not in page
    response = bob_client.post(PAGE, {"voter": "alice"})
    assert response.status_code == 422
    assert "You can make a dataset from your own votes only." in response.content.decode()
    assert not Dataset.objects.exclude(provenance={}).exists()
