"""Reading query parameters in the native API, with errors that name them."""

from rest_framework.exceptions import ValidationError


def one_of(params, name: str, choices) -> str | None:
    """The parameter's value if it is one of `choices`; None when absent or empty."""
    value = params.get(name) or None
    if value is not None and value not in choices:
        raise ValidationError({name: [f"Must be one of {', '.join(choices)}."]})
    return value


def whole_number(params, name: str, default: int, *, lowest: int, highest: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: ["Must be a whole number."]}) from None
    if not lowest <= value <= highest:
        raise ValidationError({name: [f"Must be between {lowest} and {highest:,}."]})
    return value
