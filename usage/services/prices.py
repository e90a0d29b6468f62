"""What a device-hour costs, and money as pages write it.

A kind of device is named as the worker that trains on it names it: "cpu",
or the CUDA device's name (torch's, which is the driver's, as nvidia-smi and
so /ops/ show it: "NVIDIA H200"). Its price is the operators' `DevicePrice`
for that name (ignoring case), else TAILOR_PRICE_PER_DEVICE_HOUR; every
amount is in TAILOR_CURRENCY. A price of 0 is "free": no cost is shown.

Before Start the job's device is not known yet: any live training worker
may take it. The estimate is priced at the dearest device among the training
workers reporting now (ops' heartbeats), so that it does not promise less
than the bill; with none reporting (or Redis away) it uses the default price.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import redis
from django.conf import settings

from ops import workers
from studio.services import leases
from usage.models import DevicePrice

CPU = "cpu"
# The symbol written before an amount; other currencies follow it with their code.
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
CENT = Decimal("0.01")


def currency() -> str:
    return settings.TAILOR_CURRENCY


def default_price() -> Decimal:
    return settings.TAILOR_PRICE_PER_DEVICE_HOUR


def price_for(device: str) -> Decimal:
    """The price of an hour of `device` (one query)."""
    found = DevicePrice.objects.filter(device__iexact=device).values_list(
        "price_per_hour", flat=True
    )
    price = found.first()
    return default_price() if price is None else price


def cost(seconds: float, price_per_hour: Decimal) -> Decimal:
    """Exact to the hundredth of a cent: amounts are summed before they are rounded."""
    return (Decimal(str(seconds)) / 3600 * price_per_hour).quantize(Decimal("0.000001"))


# --- the training workers' devices, from their heartbeats ---------------------------------


def device_of(heartbeat: dict) -> str:
    """The device a worker trains on, from its heartbeat: its first GPU when
    its torch was built for CUDA, else the CPU."""
    gpus = heartbeat.get("gpus") or []
    if heartbeat.get("cuda") and gpus and gpus[0].get("name"):
        return gpus[0]["name"]
    return CPU


def training_devices() -> list[str]:
    """The devices of the training workers reporting now (none when Redis is away)."""
    queue = leases.kind("training").queue
    try:
        found = workers.read_all()
    except redis.RedisError:
        return []
    return sorted(
        {device_of(w) for w in found if w.get("reporting") and queue in (w.get("queues") or [])}
    )


def training_price() -> tuple[str, Decimal]:
    """(device, price per hour) a job about to start is priced at: the dearest
    live training worker's device; ("", the default) when none reports."""
    devices = training_devices()
    if not devices:
        return "", default_price()
    return max(((device, price_for(device)) for device in devices), key=lambda pair: pair[1])


def priced_estimate(seconds: float | None) -> dict:
    """What a job's estimate stores about cost: the device and its price, and
    the cost of `seconds` on it (None when the price is 0: no cost shown)."""
    device, price = training_price()
    priced = seconds is not None and price > 0
    return {
        "device": device,
        "price_per_device_hour": float(price),
        "cost": float(cost(seconds, price)) if priced else None,
        "currency": currency(),
    }


# --- in words -------------------------------------------------------------------------------


def money(amount: Decimal | float | None, code: str | None = None) -> str:
    """An amount as pages write it: "$0.08", "€1,204.50", "12.00 CHF"; a
    positive amount below a cent is "under $0.01"; None is "—"."""
    if amount is None:
        return "—"
    code = code or currency()
    value = Decimal(str(amount))
    if 0 < value < CENT:
        return f"under {_amount(CENT, code)}"
    return _amount(value.quantize(CENT, rounding=ROUND_HALF_UP), code)


def _amount(value: Decimal, code: str) -> str:
    symbol = SYMBOLS.get(code)
    return f"{symbol}{value:,.2f}" if symbol else f"{value:,.2f} {code}"


def hourly(price: Decimal | float, code: str | None = None) -> str:
    """A price per device-hour, to its last significant decimal (at least
    two, at most four): "$2.50 a device-hour", "$0.0125 a device-hour"."""
    value = Decimal(str(price))
    places = min(4, max(2, -value.normalize().as_tuple().exponent))
    shown = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    code = code or currency()
    symbol = SYMBOLS.get(code)
    text = f"{symbol}{shown:,}" if symbol else f"{shown:,} {code}"
    return f"{text} a device-hour"
