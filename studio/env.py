"""Small typed readers for settings that come from the environment.

Each reader fails loudly, naming the variable, when a value cannot be
understood: a typo in a deployment should stop start-up, not be ignored.
"""

import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

from jobs.numbers import NumberError, read_number


class EnvError(ValueError):
    pass


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise EnvError(f"{name}={raw!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return read_number(raw, whole=True, lowest=minimum)
    except NumberError as refused:
        raise EnvError(f"{name}={raw!r} {refused.message.removesuffix('.')}") from None


def env_decimal(name: str, default: str, *, minimum: Decimal | None = None) -> Decimal:
    """An exact decimal (a price: 2.5, 0.0125); a float would round it."""
    raw = os.environ.get(name)
    text = default if raw is None or raw.strip() == "" else raw.strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise EnvError(f"{name}={raw!r} is not a number; write it like 2.5")
    if minimum is not None and value < minimum:
        raise EnvError(f"{name}={raw!r} must be at least {minimum}")
    return value


def env_currency(name: str, default: str) -> str:
    """A currency's three-letter ISO 4217 code (USD, EUR), upper-cased."""
    raw = os.environ.get(name)
    code = (default if raw is None or raw.strip() == "" else raw).strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise EnvError(f"{name}={raw!r} is not a currency code; use three letters, like USD")
    return code


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default


def env_choice(name: str, default: str, choices: set[str]) -> str:
    raw = os.environ.get(name, default).strip()
    if raw.upper() in {c.upper() for c in choices}:
        return raw.upper()
    raise EnvError(f"{name}={raw!r} must be one of {', '.join(sorted(choices))}")
