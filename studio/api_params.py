"""Reading query parameters in the native API, with errors that name them."""

from rest_framework.exceptions import ValidationError

from jobs.numbers import NumberError, read_number


def one_of(params, name: str, choices) -> str | None:
    """The parameter's value if it is one of `choices`; None when absent or empty."""
    value = params.get(name) or None
    if value is not None and value not in choices:
        raise ValidationError({name: [f"Must be one of {', '.join(choices)}."]})
    return value


def whole_number(params, name: str, default: int, *, lowest: int, highest: int) -> int:
    """The parameter as a whole number within the bounds; `default` when absent or empty."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return read_number(raw, whole=True, lowest=lowest, highest=highest)
    except NumberError as refused:
        raise ValidationError({name: [refused.sentence]}) from None
