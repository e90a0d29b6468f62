"""What a device-hour costs (usage/services/prices.py): operators' prices per
kind of device, the default from the settings, the training workers' device
read from their heartbeats, the cost before Start in the wizard and the job's
estimate, money in words; price changes in the admin are audited. Real
database and Redis; no worker."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from jobs.services.drafts import check_start_job
from jobs.services.lifecycle import create_job
from ops import workers
from studio.env import EnvError, env_currency, env_decimal
from tests.builders import ready_sample
from tests.processes import PASSWORD
from usage.models import DevicePrice
from usage.services import prices

pytestmark = pytest.mark.django_db


def heartbeat(name: str, queues: list[str], gpus: list[str], cuda: str = "12.8") -> dict:
    """A worker's heartbeat record as ops/heartbeat.py writes it (the parts read here)."""
    return {
        "name": name, "queues": queues, "concurrency": 1, "cuda": cuda if gpus else "",
        "gpus": [{"name": g, "memory_used": 0, "memory_total": 80 * 2**30} for g in gpus],
    }  # fmt: skip


@pytest.fixture
def fleet():
    """Heartbeats of a CPU and a GPU training worker, and a dearer GPU's that
    only serves (its device never trains a job)."""
    records = [
        heartbeat("train-cpu@usage-test", ["default", "train"], []),
        heartbeat("train-gpu@usage-test", ["train"], ["NVIDIA L4"]),
        heartbeat("infer-gpu@usage-test", ["infer"], ["NVIDIA H200"]),
    ]
    for record in records:
        workers.write(record)
    yield
    for record in records:
        workers.forget(record["name"])


def test_a_kind_of_device_costs_its_operators_price_else_the_default(settings):
    settings.TAILOR_PRICE_PER_DEVICE_HOUR = Decimal("0.5")
    DevicePrice.objects.create(device="NVIDIA H200", price_per_hour=Decimal("3.95"))
    assert prices.price_for("NVIDIA H200") == Decimal("3.95")
    assert prices.price_for("nvidia h200") == Decimal("3.95")
    assert prices.price_for("cpu") == Decimal("0.5")


def test_a_device_has_one_price_whatever_its_case():
    from django.core.exceptions import ValidationError

    DevicePrice.objects.create(device="cpu", price_per_hour=Decimal(1))
    twin = DevicePrice(device="CPU", price_per_hour=Decimal(2))
    with pytest.raises(ValidationError) as refused:
        twin.full_clean()
    assert refused.value.messages == ["This device already has a price: change that one."]


def test_a_heartbeat_names_its_gpu_only_when_its_torch_was_built_for_cuda():
    assert prices.device_of(heartbeat("w", ["train"], ["NVIDIA L4"])) == "NVIDIA L4"
    assert prices.device_of(heartbeat("w", ["train"], [])) == "cpu"
    # A GPU in the machine, but a CPU build of torch: it trains on the CPU.
    assert prices.device_of(heartbeat("w", ["train"], ["NVIDIA L4"], cuda="")) == "cpu"


def test_a_job_is_priced_at_the_dearest_training_workers_device(settings, fleet):
    settings.TAILOR_PRICE_PER_DEVICE_HOUR = Decimal("0.1")
    DevicePrice.objects.create(device="NVIDIA L4", price_per_hour=Decimal("0.8"))
    DevicePrice.objects.create(device="NVIDIA H200", price_per_hour=Decimal("4"))
    assert {"cpu", "NVIDIA L4"} <= set(prices.training_devices())
    assert "NVIDIA H200" not in prices.training_devices()
    assert prices.training_price() == ("NVIDIA L4", Decimal("0.8"))
    assert prices.priced_estimate(4500) == {
        "device": "NVIDIA L4", "price_per_device_hour": 0.8, "cost": 1.0, "currency": "USD",
    }  # fmt: skip


def test_the_estimate_stores_the_cost_and_the_wizard_shows_it(
    alice, alice_client, demo_models, settings
):
    settings.TAILOR_PRICE_PER_DEVICE_HOUR = Decimal("36")  # a cent a second
    settings.TAILOR_CURRENCY = "EUR"
    dataset = ready_sample(alice)
    document = {"data": {"dataset": str(dataset.pk)}, "model": {"base_model": "tailor-tiny"}}
    draft = check_start_job(alice, document)
    seconds = draft.estimate["seconds"]
    device = draft.estimate["device"]  # "" with no training worker reporting; else theirs
    assert draft.estimate["cost"] == pytest.approx(seconds / 100)
    assert (draft.estimate["price_per_device_hour"], draft.estimate["currency"]) == (36.0, "EUR")
    job = create_job(alice, draft, start=False)
    assert job.estimate["cost"] == draft.estimate["cost"]

    html = alice_client.post(
        reverse("job-preview"),
        {"data.dataset": str(dataset.pk), "model.base_model": "tailor-tiny", "preset": "quick"},
    ).content.decode()
    quick = check_start_job(alice, {**document, "preset": "quick"}).estimate
    assert f'data-testid="estimate-cost">about {prices.money(quick["cost"], "EUR")}<' in html
    on = f" ({device})" if device else ""
    assert f'data-testid="estimate-cost-basis">at €36.00 a device-hour{on}<' in html


def test_with_every_price_zero_no_cost_is_shown(alice, alice_client, demo_models):
    dataset = ready_sample(alice)
    document = {"data": {"dataset": str(dataset.pk)}, "model": {"base_model": "tailor-tiny"}}
    assert check_start_job(alice, document).estimate["cost"] is None
    html = alice_client.post(
        reverse("job-preview"),
        {"data.dataset": str(dataset.pk), "model.base_model": "tailor-tiny", "preset": "quick"},
    ).content.decode()
    assert 'data-testid="estimate-time"' in html
    assert "estimate-cost" not in html


@pytest.mark.parametrize(
    ("amount", "code", "words"),
    [(Decimal("0.0808"), "USD", "$0.08"), (Decimal("0.004"), "USD", "under $0.01"),
     (Decimal("0"), "USD", "$0.00"), (Decimal("1204.5"), "EUR", "€1,204.50"),
     (12, "CHF", "12.00 CHF"), (0.125, "GBP", "£0.13")],
)  # fmt: skip
def test_money_reads_like_money(amount, code, words):
    assert prices.money(amount, code) == words


def test_a_price_per_hour_keeps_its_significant_decimals():
    assert prices.hourly(Decimal("2.5"), "USD") == "$2.50 a device-hour"
    assert prices.hourly(Decimal("0.0125"), "USD") == "$0.0125 a device-hour"
    assert prices.hourly(Decimal("1200"), "CHF") == "1,200.00 CHF a device-hour"


def test_the_price_and_currency_settings_fail_loudly_on_bad_values(monkeypatch):
    monkeypatch.setenv("TAILOR_PRICE_PER_DEVICE_HOUR", "2,50")
    with pytest.raises(EnvError) as price:
        env_decimal("TAILOR_PRICE_PER_DEVICE_HOUR", "0", minimum=Decimal(0))
    assert str(price.value) == (
        "TAILOR_PRICE_PER_DEVICE_HOUR='2,50' is not a number; write it like 2.5"
    )
    monkeypatch.setenv("TAILOR_PRICE_PER_DEVICE_HOUR", "-1")
    with pytest.raises(EnvError) as negative:
        env_decimal("TAILOR_PRICE_PER_DEVICE_HOUR", "0", minimum=Decimal(0))
    assert str(negative.value) == "TAILOR_PRICE_PER_DEVICE_HOUR='-1' must be at least 0"
    monkeypatch.setenv("TAILOR_PRICE_PER_DEVICE_HOUR", "0.0125")
    assert env_decimal("TAILOR_PRICE_PER_DEVICE_HOUR", "0") == Decimal("0.0125")
    monkeypatch.setenv("TAILOR_CURRENCY", "dollars")
    with pytest.raises(EnvError) as currency:
        env_currency("TAILOR_CURRENCY", "USD")
    assert str(currency.value) == (
        "TAILOR_CURRENCY='dollars' is not a currency code; use three letters, like USD"
    )
    monkeypatch.setenv("TAILOR_CURRENCY", " eur ")
    assert env_currency("TAILOR_CURRENCY", "USD") == "EUR"


def test_an_operator_sets_a_price_in_the_admin_and_the_audit_log_has_it(django_user_model):
    opal = django_user_model.objects.create_user("opal", "opal@example.com", PASSWORD)
    call_command("make_operator", "opal", stdout=io.StringIO())  # staff, not a superuser
    operator = Client()
    operator.force_login(opal)
    added = operator.post(
        reverse("admin:usage_deviceprice_add"),
        {"device": "NVIDIA H200", "price_per_hour": "3.95", "note": "list price"},
    )
    assert added.status_code == 302, added.content[:500]
    price = DevicePrice.objects.get()
    changed = operator.post(
        reverse("admin:usage_deviceprice_change", args=[price.pk]),
        {"device": "NVIDIA H200", "price_per_hour": "3.50", "note": "discount"},
    )
    assert changed.status_code == 302
    assert prices.price_for("NVIDIA H200") == Decimal("3.50")
    entries = AuditEntry.objects.filter(target_type="usage.deviceprice").order_by("pk")
    assert [(e.action, e.door, e.actor_name, e.target_name) for e in entries] == [
        ("create", "admin", "opal", "Price of NVIDIA H200"),
        ("update", "admin", "opal", "Price of NVIDIA H200"),
    ]
    # Device time is the workers' record: read only.
    assert operator.get(reverse("admin:usage_deviceuse_add")).status_code == 403
    assert operator.get(reverse("admin:usage_deviceuse_changelist")).status_code == 200
