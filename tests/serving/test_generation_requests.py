"""Checking a generation request before any worker sees it: names, ownership,
parameters, prompts; votes and their tallies. Real database, no worker."""

import pytest
from django.http import Http404

from serving.models import Generation, GenerationSource, GenerationStatus, Vote
from serving.services import generations
from serving.services.generations import (
    GenerationRequest,
    InvalidRequest,
    check_request,
    read_params,
)
from serving.services.names import UnknownModel
from tests.builders import finished_job, make_job, ready_sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def alices_model(alice, demo_models):
    return finished_job(alice, ready_sample(alice))


def chat(*models, **params):
    return GenerationRequest(
        models=list(models), messages=[{"role": "user", "content": "Where is my parcel?"}],
        params=params,
    )  # fmt: skip


def errors_of(user, request) -> dict:
    with pytest.raises(InvalidRequest) as caught:
        check_request(user, request)
    return caught.value.errors


def test_a_base_and_the_owners_fine_tuned_model_share_one_request(alice, alices_model):
    checked = check_request(alice, chat("tailor-tiny", alices_model.fine_tuned_model, seed=7))
    assert [s.name for s in checked.served] == ["tailor-tiny", alices_model.fine_tuned_model]
    assert checked.task == "causal-lm"
    assert checked.params == {
        "max_new_tokens": 128, "temperature": 0.7, "top_p": 1.0, "seed": 7, "stop": [],
    }  # fmt: skip


def test_another_users_fine_tuned_model_is_unknown_to_bob(bob, alices_model):
    with pytest.raises(UnknownModel) as caught:
        check_request(bob, chat(alices_model.fine_tuned_model))
    assert caught.value.message == (
        f"The model '{alices_model.fine_tuned_model}' does not exist or you do not have access to it."
    )


def test_an_operator_may_run_anyones_fine_tuned_model(olga, alices_model):
    checked = check_request(olga, chat(alices_model.fine_tuned_model))
    assert checked.served[0].job == alices_model


def test_a_model_whose_job_has_not_finished_is_not_ready(alice, demo_models):
    job = make_job(alice, ready_sample(alice))
    with pytest.raises(UnknownModel) as caught:
        check_request(alice, chat(job.fine_tuned_model))
    assert caught.value.message == (
        f"The fine-tuned model '{job.fine_tuned_model}' is not ready: its job is created."
    )


def test_an_unknown_base_is_unknown(alice):
    with pytest.raises(UnknownModel) as caught:
        check_request(alice, chat("gpt-17"))
    assert caught.value.message == (
        "The model 'gpt-17' does not exist or you do not have access to it."
    )


def test_models_of_different_bases_cannot_be_compared(alice, alices_model, demo_models):
    minilm = finished_job(alice, ready_sample(alice, "sentiment"), model="minilm-l6")
    assert errors_of(alice, chat(alices_model.fine_tuned_model, minilm.fine_tuned_model)) == {
        "models": "Every model compared must share one base model (adapters attach to it)."
    }


def test_a_base_encoder_alone_has_no_labels_to_give(alice, demo_models):
    request = GenerationRequest(models=["minilm-l6"], text="Lovely.")
    assert errors_of(alice, request) == {
        "models": "A base encoder has no labels of its own: add a fine-tuned model."
    }


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([], "Pick at least one model."),
        (["tailor-tiny", "tailor-tiny"], "Each model may appear once."),
        (["tailor-tiny", 3], "Name each model as a string."),
    ],
)
def test_the_list_of_models_is_checked(alice, demo_models, models, message):
    assert errors_of(alice, GenerationRequest(models=models, text="x")) == {"models": message}


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"temperature": 5}, "temperature", "temperature: must be at least 0 and at most 2."),
        ({"top_p": 0}, "top_p", "top_p: must be more than 0 and at most 1."),
        ({"max_new_tokens": 0}, "max_new_tokens",
         "max_new_tokens: must be at least 1 and at most 1,024."),
        ({"max_new_tokens": 2.5}, "max_new_tokens", "max_new_tokens: must be a whole number."),
        ({"seed": -1}, "seed", "seed: must be at least 0 and at most 4,294,967,295."),
        ({"temperature": "hot"}, "temperature", "temperature: must be a number."),
        ({"temperature": True}, "temperature", "temperature: must be a number."),
        ({"stop": [""]}, "stop", "stop: must be a non-empty string or a list of at most 4 of them."),
    ],
)  # fmt: skip
def test_out_of_range_parameters_name_their_field(params, field, message):
    with pytest.raises(InvalidRequest) as caught:
        read_params(params)
    assert (caught.value.field, caught.value.message) == (field, message)


def test_parameters_are_named_as_the_caller_names_them():
    with pytest.raises(InvalidRequest) as caught:
        read_params({"max_tokens": 0}, names={"max_new_tokens": "max_tokens"})
    assert caught.value.errors == {
        "max_tokens": "max_tokens: must be at least 1 and at most 1,024."
    }


def test_numbers_typed_into_a_form_are_read():
    assert read_params({"max_new_tokens": "32", "temperature": "0", "seed": "3"}) == {
        "max_new_tokens": 32, "temperature": 0.0, "top_p": 1.0, "seed": 3, "stop": [],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("messages", "errors"),
    [
        ([], {"messages": "messages: must be a non-empty list of {role, content} objects."}),
        ([{"role": "robot", "content": "hi"}],
         {"messages[0].role": "messages[0].role: must be one of system, user, assistant."}),
        ([{"role": "user", "content": 4}],
         {"messages[0].content": "messages[0].content: must be a string."}),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
         {"messages": "messages: the last message must be from the user (or the system)."}),
        ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "  "}],
         {"messages": "messages: write a user message."}),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
         {"messages[0].content": "messages[0].content: only text parts are supported."}),
    ],
)  # fmt: skip
def test_a_chat_is_checked_message_by_message(alice, demo_models, messages, errors):
    request = GenerationRequest(models=["tailor-tiny"], messages=messages)
    assert errors_of(alice, request) == errors


def test_text_parts_of_a_message_are_joined(alice, demo_models):
    content = [{"type": "text", "text": "Where is "}, {"type": "text", "text": "my parcel?"}]
    request = GenerationRequest(
        models=["tailor-tiny"], messages=[{"role": "user", "content": content}]
    )
    assert check_request(alice, request).messages == [
        {"role": "user", "content": "Where is my parcel?"}
    ]


# --- votes ---------------------------------------------------------------------------


def answered(owner, job, status=GenerationStatus.SUCCEEDED) -> Generation:
    checked = check_request(owner, chat("tailor-tiny", job.fine_tuned_model))
    generation = generations.create_generation(owner, checked, source=GenerationSource.PLAYGROUND)
    Generation.objects.filter(pk=generation.pk).update(status=status)
    generation.refresh_from_db()
    return generation


def test_votes_are_tallied_per_pair_whichever_way_round_they_were_shown(alice, alices_model):
    tuned = alices_model.fine_tuned_model
    first, second, third = (answered(alice, alices_model) for _ in range(3))
    generations.record_vote(alice, first, "tailor-tiny", tuned, "b")  # tuned is better
    generations.record_vote(alice, second, tuned, "tailor-tiny", "a")  # tuned again, as A
    generations.record_vote(alice, third, tuned, "tailor-tiny", "tie")
    [tally] = generations.vote_tallies(alice)
    # Stored in name order: "ft:…" < "tailor-tiny".
    assert (tally.model_a, tally.model_b) == (tuned, "tailor-tiny")
    assert (tally.a_wins, tally.b_wins, tally.ties, tally.total) == (2, 0, 1, 3)


def test_voting_again_on_the_same_pair_changes_the_vote(alice, alices_model):
    generation = answered(alice, alices_model)
    generations.record_vote(alice, generation, "tailor-tiny", alices_model.fine_tuned_model, "a")
    generations.record_vote(alice, generation, "tailor-tiny", alices_model.fine_tuned_model, "b")
    assert Vote.objects.count() == 1
    [tally] = generations.vote_tallies(alice)
    assert (tally.model_a, tally.a_wins, tally.b_wins) == (alices_model.fine_tuned_model, 1, 0)


def test_a_vote_must_name_two_models_of_the_comparison(alice, alices_model):
    generation = answered(alice, alices_model)
    with pytest.raises(InvalidRequest) as caught:
        generations.record_vote(alice, generation, "tailor-tiny", "minilm-l6", "a")
    assert caught.value.message == "Vote on two different models of this comparison."


def test_an_unfinished_comparison_cannot_be_voted_on(alice, alices_model):
    generation = answered(alice, alices_model, status=GenerationStatus.RUNNING)
    with pytest.raises(InvalidRequest) as caught:
        generations.record_vote(
            alice, generation, "tailor-tiny", alices_model.fine_tuned_model, "a"
        )
    assert caught.value.message == "Vote once every answer has finished."


def test_bob_cannot_find_or_vote_on_alices_comparison(alice, bob, alices_model):
    generation = answered(alice, alices_model)
    with pytest.raises(Http404):
        generations.access_generation(bob, generation.pk)
    with pytest.raises(Http404):
        generations.record_vote(bob, generation, "tailor-tiny", alices_model.fine_tuned_model, "a")
