"""The offline demo models: generated deterministically, idempotently, 4-bit ready."""

import hashlib
import json

import pytest

pytestmark = pytest.mark.training


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_make_demo_models_is_idempotent(demo_models):
    path, created = demo_models.make_tailor_tiny()
    assert created is False
    assert demo_models.tiny_is_current(path)


def test_tailor_tiny_is_the_same_model_on_every_machine(demo_models, tmp_path):
    fresh, created = demo_models.make_tailor_tiny(tmp_path / "tailor-tiny")
    assert created is True
    shared = demo_models.tiny_path()
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert sha256(fresh / name) == sha256(shared / name), name


def test_tailor_tiny_widths_suit_the_cpu_4bit_kernel(demo_models):
    config = json.loads((demo_models.tiny_path() / "config.json").read_text())
    assert config["model_type"] == "llama"
    for key in ("hidden_size", "intermediate_size", "vocab_size"):
        assert config[key] % 64 == 0, key


def test_the_chat_template_marks_only_assistant_turns_for_the_loss(demo_models):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_models.tiny_path())
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the hex code of red?"},
        {"role": "assistant", "content": "#ff0000"},
    ]
    assert tokenizer.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nWhat is the hex code of red?<|im_end|>\n"
        "<|im_start|>assistant\n#ff0000<|im_end|>\n"
    )
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    trained = [
        t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m
    ]
    assert tokenizer.decode(trained) == "#ff0000<|im_end|>"
    assert tokenizer.eos_token == "<|im_end|>"


def test_tailor_tiny_loads_in_4bit_on_the_cpu_and_generates(demo_models):
    import torch
    from bitsandbytes.nn import Linear4bit
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    path = demo_models.tiny_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(
        path,
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        ),
    )
    assert isinstance(model.model.layers[0].mlp.down_proj, Linear4bit)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hello"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = model.generate(**prompt, max_new_tokens=6, do_sample=False)
    assert output.shape[1] == prompt["input_ids"].shape[1] + 6


def test_minilm_is_found_inside_its_package(demo_models):
    path = demo_models.minilm_path()
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "bert"
    assert (path / "model.safetensors").exists()


@pytest.mark.django_db
def test_the_models_page_lists_both_demo_models_as_ready(demo_models, alice_client):
    html = alice_client.get("/models/").content.decode()
    for name in ("tailor-tiny", "minilm-l6"):
        row = html.split(f'id="model-{name}"')[1].split("</tr>")[0]
        assert "ready" in row
