"""One vocabulary of tasks: every layer names them with jobs/vocabulary.py's words."""

import pytest

from datasets_app.engine import TASK_OF_FORMAT
from datasets_app.samples import SAMPLES
from jobs import vocabulary
from jobs.models import ModelTask
from jobs.training import objectives


@pytest.mark.parametrize(
    ("word", "dataset_task", "model_task"),
    [
        ("generation", "generation", "causal-lm"),
        ("causal-lm", "generation", "causal-lm"),
        ("classification", "classification", "sequence-classification"),
        ("sequence-classification", "classification", "sequence-classification"),
    ],
    ids=["generation", "causal-lm", "classification", "sequence-classification"],
)
def test_each_word_names_its_pair_from_either_side(word, dataset_task, model_task):
    assert vocabulary.as_dataset_task(word) == dataset_task
    assert vocabulary.as_model_task(word) == model_task


def test_every_layer_uses_the_vocabularys_words():
    assert set(TASK_OF_FORMAT.values()) == set(vocabulary.DATASET_TASKS)
    # Every dataset task has a bundled sample but feedback: KTO learns from the
    # thumbs a team collects, and the preference sample shows preference tuning.
    samples = {sample.task for sample in SAMPLES}
    assert samples | {vocabulary.FEEDBACK} == set(vocabulary.DATASET_TASKS)
    assert tuple(ModelTask.values) == vocabulary.MODEL_TASKS
    # Every model task has the one training objective that trains it by default.
    assert {objectives.for_task(task).model_task for task in vocabulary.MODEL_TASKS} == set(
        vocabulary.MODEL_TASKS
    )


def test_both_filters_accept_the_same_six_words():
    assert set(vocabulary.DATASET_TASK_WORDS) == set(vocabulary.MODEL_TASK_WORDS) == {
        "generation", "classification", "preference", "feedback", "causal-lm",
        "sequence-classification",
    }  # fmt: skip
    # A causal LM learns generation, preference and feedback data; a model
    # filter's dataset word means the model task that learns it.
    assert vocabulary.as_model_task("preference") == vocabulary.CAUSAL_LM
    assert vocabulary.as_dataset_task("causal-lm") == vocabulary.GENERATION


def test_the_adapter_kinds_and_their_names_are_defined_once():
    from jobs import config as cfg

    assert vocabulary.ADAPTERS == ("qlora", "lora", "full")
    # The job file's `model.method` accepts exactly the adapter kinds.
    assert cfg.METHODS is vocabulary.ADAPTER_LABELS
    assert cfg.ModelConfig().method == vocabulary.Adapter.QLORA
    # The short name the job list, a job's page and the catalog show.
    assert vocabulary.ADAPTER_NAMES == {"qlora": "QLoRA", "lora": "LoRA", "full": "Full fine-tune"}
