"""Votes as the playground shows them, and a refused request in the page's words.

Real database; the comparisons are rows as a finished run leaves them (no
worker: the answers themselves are not under test)."""

import pytest
from django.urls import reverse

from serving.models import Generation, GenerationSource, GenerationStatus, Vote
from serving.services import generations, playground, votes
from serving.services.generations import GenerationRequest, InvalidRequest, check_request
from tests.builders import finished_job, ready_sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_model(alice, demo_models):
    return finished_job(alice, ready_sample(alice), name="Routing, quick")


def comparison(owner, *models) -> Generation:
    """A finished comparison whose panes are `models`, left to right."""
    checked = check_request(
        owner,
        GenerationRequest(models=list(models), messages=[{"role": "user", "content": "hi"}]),
    )
    generation = generations.create_generation(owner, checked, source=GenerationSource.PLAYGROUND)
    Generation.objects.filter(pk=generation.pk).update(status=GenerationStatus.SUCCEEDED)
    generation.refresh_from_db()
    return generation


def vote(client, generation, model_a, model_b, choice):
    return client.post(
        reverse("playground-vote", args=[generation.pk]),
        {"model_a": model_a, "model_b": model_b, "choice": choice},
    )


def test_the_tally_shows_the_pair_as_it_was_seen_by_its_display_names(alice, alices_model):
    tuned = alices_model.fine_tuned_model
    generation = comparison(alice, "tailor-tiny", tuned)
    # "B is better", B being the fine-tuned model in the right pane.
    cast = votes.cast_vote(alice, generation, "tailor-tiny", tuned, "b")
    assert cast.sentence == (
        "Vote recorded: B is better (Routing, quick). To change it, choose another answer."
    )
    [tally] = votes.tallies_as_seen(alice)
    assert (tally.left, tally.right) == ("tailor-tiny", tuned)
    assert (tally.left_label, tally.right_label) == (
        "Tailor Tiny (demo, 3.6M) (base)",
        "Routing, quick",
    )
    assert (tally.left_wins, tally.ties, tally.right_wins) == (0, 0, 1)
    assert (tally.left_share, tally.tie_share, tally.right_share) == (0, 0, 100)


def test_a_pair_shown_the_other_way_round_reads_as_its_latest_comparison_showed_it(
    alice, alices_model
):
    tuned = alices_model.fine_tuned_model
    votes.cast_vote(alice, comparison(alice, "tailor-tiny", tuned), "tailor-tiny", tuned, "b")
    # Later, the fine-tuned model on the left; A is better, A being it again.
    votes.cast_vote(alice, comparison(alice, tuned, "tailor-tiny"), tuned, "tailor-tiny", "a")
    votes.cast_vote(alice, comparison(alice, tuned, "tailor-tiny"), tuned, "tailor-tiny", "tie")
    [tally] = votes.tallies_as_seen(alice)
    assert (tally.left, tally.right) == (tuned, "tailor-tiny")
    assert (tally.left_wins, tally.ties, tally.right_wins, tally.total) == (2, 1, 0, 3)


def test_voting_the_same_again_says_one_vote_counts(alice_client, alice, alices_model):
    tuned = alices_model.fine_tuned_model
    generation = comparison(alice, "tailor-tiny", tuned)
    vote(alice_client, generation, "tailor-tiny", tuned, "b")
    again = vote(alice_client, generation, "tailor-tiny", tuned, "b")
    assert again.status_code == 200
    assert (
        "You already voted: B is better (Routing, quick). One vote per pair of answers counts; "
        "to change it, choose another answer."
    ) in again.content.decode()
    assert Vote.objects.count() == 1
    [tally] = votes.tallies_as_seen(alice)
    assert (tally.left_wins, tally.ties, tally.right_wins) == (0, 0, 1)


def test_voting_otherwise_changes_the_vote_and_says_so(alice_client, alice, alices_model):
    tuned = alices_model.fine_tuned_model
    generation = comparison(alice, "tailor-tiny", tuned)
    vote(alice_client, generation, "tailor-tiny", tuned, "b")
    changed = vote(alice_client, generation, "tailor-tiny", tuned, "a")
    assert (
        "Vote changed: now A is better (Tailor Tiny (demo, 3.6M) (base)), no longer B is better "
        "(Routing, quick). One vote per pair of answers counts."
    ) in changed.content.decode()
    [tally] = votes.tallies_as_seen(alice)
    assert (tally.left_wins, tally.ties, tally.right_wins) == (1, 0, 0)


def test_a_vote_with_the_panes_swapped_in_the_form_is_read_as_shown(alice, alices_model):
    tuned = alices_model.fine_tuned_model
    generation = comparison(alice, "tailor-tiny", tuned)
    votes.cast_vote(alice, generation, "tailor-tiny", tuned, "b")
    # The same two answers, A and B picked the other way round: still the same vote.
    cast = votes.cast_vote(alice, generation, tuned, "tailor-tiny", "a")
    assert cast.previous == "a"
    assert cast.sentence.startswith("You already voted: A is better (Routing, quick).")


def test_bob_cannot_vote_on_alices_comparison(bob_client, alice, alices_model):
    generation = comparison(alice, "tailor-tiny", alices_model.fine_tuned_model)
    response = vote(bob_client, generation, "tailor-tiny", alices_model.fine_tuned_model, "a")
    assert response.status_code == 404
    assert not Vote.objects.exists()


# --- a refused request, in the page's words -------------------------------------------


def test_the_page_says_plain_sentences_where_the_api_names_field_paths(alice, demo_models):
    request = GenerationRequest(
        models=["tailor-tiny"],
        messages=[{"role": "user", "content": "  "}],
        params={"temperature": 9, "top_p": 0},
    )
    with pytest.raises(InvalidRequest) as caught:
        check_request(alice, request)
    # The APIs keep the field paths their clients send.
    assert caught.value.errors == {
        "messages": "messages: write a user message.",
        "temperature": "temperature: must be at least 0 and at most 2.",
        "top_p": "top_p: must be more than 0 and at most 1.",
    }
    assert playground.page_errors(caught.value.errors) == {
        "prompt": "Write a message first.",
        "temperature": "Temperature must be at least 0 and at most 2.",
        "top_p": "Top-p must be more than 0 and at most 1.",
    }


def test_a_prompt_too_long_is_said_in_the_pages_words(alice, demo_models):
    request = GenerationRequest(
        models=["tailor-tiny"],
        messages=[{"role": "user", "content": "x" * (generations.MAX_PROMPT_CHARACTERS + 1)}],
    )
    with pytest.raises(InvalidRequest) as caught:
        check_request(alice, request)
    assert playground.page_errors(caught.value.errors) == {
        "prompt": "The system and user messages may have at most 32,000 characters together."
    }
