"""The configuration document: reading, checking, presets sized in steps."""

import dataclasses
import io
import time
import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import config as cfg
from jobs.config.labels import FIELD_LABELS, for_people
from jobs.services.lifecycle import parse_config_upload
from tests.api_errors import field_errors

ROUTING = cfg.DatasetFacts(
    rows=1200, validation_rows=100, mean_characters=51, p95_characters=80, task="generation"
)
TINY = cfg.ModelFacts(
    task="causal-lm", parameters=3_572_992, context_length=512, characters_per_token=1.6,
    learning_rate=3e-3, batch_size=16, target_modules=("all-linear",),
)  # fmt: skip


def test_quick_on_the_routing_sample_is_one_epoch_of_75_steps():
    overlay = cfg.preset_overlay("quick", ROUTING, TINY, "qlora")
    config = cfg.read_document(overlay)
    assert cfg.plan(config, ROUTING, TINY).total_steps == 75
    assert config.training.learning_rate == 3e-3


def test_a_step_cap_limits_a_large_dataset():
    big = cfg.DatasetFacts(rows=100_000, validation_rows=0, mean_characters=51,
                           p95_characters=80, task="generation")  # fmt: skip
    overlay = cfg.preset_overlay("quick", big, TINY, "qlora")
    assert overlay["training"]["max_steps"] == 300


def test_packing_sizes_steps_by_tokens_not_rows():
    config = cfg.read_document({"training": {"packing": True, "max_seq_length": 512}})
    assert cfg.plan(config, ROUTING, TINY).total_steps < 75


def test_each_device_takes_its_own_batch_so_an_epoch_has_fewer_steps():
    overlay = cfg.preset_overlay("quick", ROUTING, TINY, "qlora")
    overlay["training"]["devices"] = 3
    plan = cfg.plan(cfg.read_document(overlay), ROUTING, TINY)
    assert plan.rows_per_step == 16 * 3
    assert plan.total_steps == 25  # 75 on one device


@pytest.mark.parametrize("devices", [0, 9])
def test_devices_are_one_to_eight(devices):
    config = cfg.read_document({"training": {"devices": devices}})
    with pytest.raises(cfg.ConfigError) as error:
        cfg.check_config(config, full_finetune_limit=0, model=None)
    assert list(error.value.as_dict()) == ["training.devices"]


def test_reading_names_every_bad_field():
    with pytest.raises(cfg.ConfigError) as error:
        cfg.read_document({"training": {"epochs": "two", "dropout": 0.1}, "extra": {}})
    assert error.value.as_dict() == {
        "training.epochs": "must be a number.",
        "training.dropout": "is not a known field.",
        "extra": "is not a configuration section.",
    }


def test_preset_descriptions_follow_their_shapes(monkeypatch):
    assert cfg.preset_description("quick") == (
        "One pass, at most 300 steps, one evaluation at the end."
    )
    monkeypatch.setitem(cfg.PRESET_SHAPES, "quick", {**cfg.PRESET_SHAPES["quick"], "step_cap": 500})
    assert cfg.preset_description("quick") == (
        "One pass, at most 500 steps, one evaluation at the end."
    )


# --- untrusted job files and bodies (issue 13) ---------------------------------------------


def alias_bomb(levels: int) -> bytes:
    """A job file whose last field stands for 9**levels strings, in a few hundred bytes."""
    lines = ["data:", "  x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  x{n}: &x{n} [{', '.join([f'*x{n - 1}'] * 9)}]" for n in range(1, levels)]
    lines.append(f"  validation_dataset: *x{levels - 1}")
    return "\n".join(lines).encode()


def test_a_job_file_with_aliases_is_refused_before_they_expand():
    bomb = alias_bomb(15)
    assert 900 < len(bomb) < 1024
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(cfg.ConfigError) as error:
        parse_config_upload(SimpleUploadedFile("bomb.yaml", bomb))
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert error.value.as_dict() == {
        "config_file": (
            "uses a YAML alias (*x0) on line 3; a Tailor job file has none: write the value out."
        )
    }
    assert elapsed < 0.5 and peak < 2_000_000


@pytest.mark.django_db
def test_the_api_answers_an_alias_bomb_with_400(alice_api):
    # The first request of a process loads the API's modules: not the bomb's time.
    alice_api.post("/api/v1/jobs/estimate/", {}, format="json")
    upload = io.BytesIO(alias_bomb(15))
    upload.name = "bomb.yaml"
    started = time.monotonic()
    response = alice_api.post("/api/v1/jobs/estimate/", {"config_file": upload}, format="multipart")
    assert time.monotonic() - started < 1
    assert response.status_code == 400
    assert field_errors(response) == {
        "config_file": [
            "uses a YAML alias (*x0) on line 3; a Tailor job file has none: write the value out."
        ]
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[" * 5000 + "]" * 5000,
            "nests deeper than a Tailor job file does (more than 10 levels, on line 1).",
        ),
        (
            "training:\n  seed: " + "7" * 5000,
            "is not valid YAML: a number or date in it cannot be read.",
        ),
        ("name: 2024-02-30", "is not valid YAML: a number or date in it cannot be read."),
        ("name: caf\xe9", "is not valid YAML (it is not UTF-8 text)."),
    ],
)
def test_a_job_file_python_cannot_build_is_refused_in_a_sentence(text, message):
    raw = text.encode("latin-1")
    with pytest.raises(cfg.ConfigError) as error:
        parse_config_upload(SimpleUploadedFile("job.yaml", raw))
    assert error.value.as_dict() == {"config_file": message}


def shared_bomb(levels: int) -> list:
    """A value that prints as 9**levels strings but is `levels` small lists in memory,
    as a JSON body cannot be but a YAML file with aliases could."""
    value = ["lol"] * 9
    for _ in range(levels):
        value = [value] * 9
    return value


def test_a_field_takes_only_its_own_type_and_is_never_printed():
    started = time.monotonic()
    with pytest.raises(cfg.ConfigError) as error:
        cfg.read_document(
            {
                "tailor_config": shared_bomb(7),
                "name": shared_bomb(7),
                "data": {"dataset": shared_bomb(7), "validation_dataset": shared_bomb(7)},
                "training": {"seed": "--5", "eval_every": "²", "epochs": 10**400},
            }
        )
    assert time.monotonic() - started < 0.5
    assert error.value.as_dict() == {
        "tailor_config": "must be the version number 1.",
        "name": "must be text.",
        "data.dataset": "must be text.",
        "data.validation_dataset": "must be text.",
        "training.seed": "must be a whole number.",
        "training.eval_every": "must be a whole number.",
        "training.epochs": "must be a number.",
    }


def test_an_unknown_name_is_quoted_clipped():
    long = "x" * 100_000
    with pytest.raises(cfg.ConfigError) as error:
        cfg.read_document({long: {}, "training": {long: 1}, 7: {}})
    assert error.value.as_dict() == {
        "x" * 39 + "…": "is not a configuration section.",
        "training." + "x" * 39 + "…": "is not a known field.",
        "int key": "is not a configuration section.",
    }


@pytest.mark.django_db
def test_the_api_quotes_no_huge_json_value_or_name(alice_api):
    huge = "x" * 1_000_000
    body = {"data": {"validation_dataset": [huge] * 3}, "training": {huge: 1}}
    response = alice_api.post("/api/v1/jobs/estimate/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "data.validation_dataset: must be text.",
            "field": "data.validation_dataset",
            "details": [
                {"field": "data.validation_dataset", "code": "invalid", "message": "must be text."},
                {"field": "training." + "x" * 39 + "…", "code": "invalid",
                 "message": "is not a known field."},
            ],
        }
    }  # fmt: skip


# --- labels (jobs/config/labels.py) -------------------------------------------------


def test_every_field_of_the_document_has_a_label_for_the_pages():
    paths = {"name", "preset"} | {
        f"{section}.{field.name}"
        for section, shape in cfg.SECTIONS.items()
        for field in dataclasses.fields(shape)
    }
    assert paths <= set(FIELD_LABELS), paths - set(FIELD_LABELS)


def test_an_error_reads_in_labels_and_a_path_it_mentions_too():
    error = cfg.FieldError(
        "training.early_stopping_patience",
        "needs evaluations during training: set training.eval_every.",
    )
    assert for_people(error) == (
        "Early-stopping patience",
        "needs evaluations during training: set “Evaluate every N steps”.",
    )
    # A file's own invented field keeps its name; numbers and file names stay.
    assert for_people(cfg.FieldError("training.speed", "is not a known field.")) == (
        "training.speed",
        "is not a known field.",
    )
    assert for_people(cfg.FieldError("config_file", "tailor-job.yaml at 0.003 is odd.")) == (
        "Configuration file",
        "tailor-job.yaml at 0.003 is odd.",
    )


# --- tracking (jobs/training/trackers.py reports to them) ----------------------------


def test_the_tracking_section_names_the_trackers_a_job_reports_to():
    assert cfg.JobConfig().tracking.trackers == []
    config = cfg.read_document(
        {"tracking": {"wandb_project": "routing", "wandb_tags": "tiny, lora",
                      "mlflow_experiment": "support"}}
    )  # fmt: skip
    assert config.tracking.trackers == ["wandb", "mlflow"]
    assert config.tracking.wandb_tags == ["tiny", "lora"]
    cfg.check_config(config, full_finetune_limit=0, model=None)
    assert config.to_document()["tracking"]["mlflow_experiment"] == "support"


def test_bad_tracking_fields_are_named_with_a_sentence_each():
    with pytest.raises(cfg.ConfigError) as error:
        cfg.read_document({"tracking": {"wandb_tags": 3, "wandb_key": "secret"}})
    assert error.value.as_dict() == {
        "tracking.wandb_tags": "must be a list of tags.",
        "tracking.wandb_key": "is not a known field.",
    }
    config = cfg.read_document(
        {"tracking": {"wandb_entity": "team#1", "wandb_name": "n", "wandb_tags": ["t" * 65],
                      "mlflow_run_name": "r", "mlflow_experiment": None}}
    )  # fmt: skip
    with pytest.raises(cfg.ConfigError) as error:
        cfg.check_config(config, full_finetune_limit=10**12, model=None)
    # A field with a bad value is not also told it needs its tracker.
    assert error.value.as_dict() == {
        "tracking.wandb_entity": "must be at most 128 characters and use none of "
        "/ \\ # ? % or : (W&B's rule).",
        "tracking.wandb_tags": "must be at most 20 tags of at most 64 characters each.",
        "tracking.wandb_name": "needs tracking.wandb_project: set it too.",
        "tracking.mlflow_run_name": "needs tracking.mlflow_experiment: set it too.",
    }
    assert for_people(cfg.FieldError("tracking.wandb_name", error.value.as_dict()[
        "tracking.wandb_name"])) == ("W&B run name", "needs “W&B project”: set it too.")  # fmt: skip
