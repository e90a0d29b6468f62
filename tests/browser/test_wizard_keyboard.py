"""In Chromium, with the keyboard alone: through the new-job wizard's models,
methods and presets, the focus stays on the radio the user is on while the
estimate follows every choice (the wizard used to draw the whole form again,
and the focus fell to the page)."""

import pytest
from playwright.sync_api import expect

from jobs.services import lifecycle
from jobs.wizard import human_bytes
from tests.builders import ready_sample
from tests.processes import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("demo_models"),
]


def focused(page) -> dict:
    return page.evaluate(
        "() => ({id: document.activeElement.id, checked: !!document.activeElement.checked})"
    )


def press_and_wait_for_the_preview(page, key: str, replaced: str) -> None:
    """Press `key`; wait until the preview has replaced the element `replaced`
    (a selector), which the answer to this change always draws again, and
    htmx has settled what it swapped in. A key pressed between the swap and
    the settle would reach a form whose triggers htmx has not attached yet,
    a few milliseconds no person's hands can hit but a script's can."""
    page.evaluate(
        f"""() => {{
            window.before = document.querySelector({replaced!r});
            window.settled = false;
            document.addEventListener("htmx:afterSettle", () => {{ window.settled = true; }},
                                      {{once: true}});
        }}"""
    )
    page.keyboard.press(key)
    page.wait_for_function(
        f"() => document.querySelector({replaced!r}) && "
        f"document.querySelector({replaced!r}) !== window.before && window.settled"
    )


def memory_of(owner, dataset, model: str, method: str, preset: str = "quick") -> str:
    document = {
        "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": model, "method": method},
        "preset": preset,
    }
    return human_bytes(lifecycle.check_start_job(owner, document).estimate["memory_bytes"])


def test_a_keyboard_user_arrows_through_models_methods_and_presets_and_keeps_the_focus(
    page, live_server_url, alice
):
    dataset = ready_sample(alice)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/jobs/new/?dataset={dataset.pk}")

    # Tab from the dataset to the model radio group; Space chooses the first.
    page.locator("#id_data-dataset").focus()
    page.keyboard.press("Tab")
    assert focused(page) == {"id": "id_model-tailor-tiny", "checked": False}
    press_and_wait_for_the_preview(page, "Space", "#wizard")
    assert focused(page) == {"id": "id_model-tailor-tiny", "checked": True}
    expect(page.get_by_test_id("estimate-steps")).to_have_text("75")

    # Down to the next model and up again: one preview each, the focus stays.
    press_and_wait_for_the_preview(page, "ArrowDown", "#method-options")
    assert focused(page) == {"id": "id_model-smollm2-135m-instruct", "checked": True}
    press_and_wait_for_the_preview(page, "ArrowUp", "#method-options")
    assert focused(page) == {"id": "id_model-tailor-tiny", "checked": True}
    expect(page.get_by_test_id("estimate-memory")).to_have_text(
        memory_of(alice, dataset, "tailor-tiny", "qlora")
    )

    # On to the methods: LoRA, and the estimate's memory is LoRA's.
    page.keyboard.press("Tab")
    assert focused(page) == {"id": "id_method-qlora", "checked": True}
    press_and_wait_for_the_preview(page, "ArrowDown", "#method-lora-memory")
    assert focused(page) == {"id": "id_method-lora", "checked": True}
    lora = memory_of(alice, dataset, "tailor-tiny", "lora")
    expect(page.get_by_test_id("estimate-memory")).to_have_text(lora)
    expect(page.get_by_test_id("method-lora-memory")).to_have_text(f"about {lora} of memory")

    # And the presets: Balanced runs two epochs, 150 steps.
    page.keyboard.press("Tab")
    assert focused(page) == {"id": "id_preset-quick", "checked": True}
    press_and_wait_for_the_preview(page, "ArrowRight", "#advanced-fields")
    assert focused(page) == {"id": "id_preset-balanced", "checked": True}
    expect(page.get_by_test_id("estimate-steps")).to_have_text("150")
    assert page.locator("#id_training-epochs").input_value() == "2"

    # Enter on a radio submits the form: the job starts with what was chosen.
    page.keyboard.press("Enter")
    expect(page.locator(".job-meta")).to_contain_text("LoRA")
