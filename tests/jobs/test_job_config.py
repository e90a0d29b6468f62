"""The configuration document: reading, checking, presets sized in steps."""

import pytest

from jobs import config as cfg

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
