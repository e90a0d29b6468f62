"""Reading a number someone sent: one reader, one table of sentences.

Plain Python, like jobs/vocabulary.py: the job configuration (which imports no
Django), the web layer and the command line all read it.

`read_number` takes what a request, a form, a websocket message, a YAML job
file or an environment variable holds and answers an int (a whole number) or
a float, or raises `NumberError`, whose sentence comes from SENTENCES: "must
be a whole number.", "must be at least 1 and at most 200.". Each caller keeps
its own error type and names its own field; the number and the sentence are
read here, once, so every edge refuses the same values in the same words.

Accepted: ints; finite floats (whole-valued ones where a whole number is
asked for, 3.0 read as 3); and, unless `text=False`, a short ASCII text that
Python's int() (whole numbers) or float() reads, surrounding spaces allowed.
Refused: True and False (ints to Python, not to the person who sent them),
NaN and infinities ("1e400" is one), an int past a float's range where a
number is asked for, digits of other scripts ("٣"), and text longer than
MAX_TEXT_CHARACTERS. The trade-off: a 50-digit text is called "not a whole
number" rather than "too large"; in exchange int() never meets its own
4,300-digit limit, whose sentence is not ours to show, and a query string
costs nothing to read. JSON gives numbers as numbers, so a JSON field that
OpenAI types as a number (a seed, a hyperparameter) passes `text=False`.
"""

from __future__ import annotations

import math

# The longest text read as a number: a 20-digit seed or "0.00001" with room to
# spare, far from int()'s 4,300-digit limit.
MAX_TEXT_CHARACTERS = 40

# code -> sentence fragment; its subject is the field the caller names.
SENTENCES = {
    "whole_number": "must be a whole number.",
    "number": "must be a number.",
    "at_least": "must be at least {lowest}.",
    "more_than": "must be more than {lowest}.",
    "at_most": "must be at most {highest}.",
    "at_least_at_most": "must be at least {lowest} and at most {highest}.",
    "more_than_at_most": "must be more than {lowest} and at most {highest}.",
}


class NumberError(ValueError):
    """A value refused: `code` is a key of SENTENCES, `message` its sentence
    ("must be a whole number."), `sentence` the same with a capital letter."""

    def __init__(self, code: str, **params):
        self.code = code
        self.message = SENTENCES[code].format(**params)
        super().__init__(self.message)

    @property
    def sentence(self) -> str:
        """The message as a sentence of its own, under a field's name ("Must be …")."""
        return self.message[:1].upper() + self.message[1:]


def read_number(
    value,
    *,
    whole: bool,
    lowest: int | float | None = None,
    highest: int | float | None = None,
    lowest_open: bool = False,
    text: bool = True,
) -> int | float:
    """`value` as an int (`whole`) or a float, within the bounds; NumberError.

    `lowest` and `highest` are inclusive, but `lowest_open` makes `lowest`
    excluded (a top-p of 0 is no top-p). A caller handles absence (None, "")
    itself, with its own default: here it is refused like any other non-number.
    """
    number = _whole(value, text) if whole else _float(value, text)
    too_low = lowest is not None and (number <= lowest if lowest_open else number < lowest)
    too_high = highest is not None and number > highest
    if too_low or too_high:
        raise _out_of_range(lowest, highest, lowest_open)
    return number


def shown(bound: int | float) -> str:
    """A bound as a sentence writes it: 1,000 and 4,294,967,295; 0.5 and 1e-05."""
    if isinstance(bound, int) or bound.is_integer():
        return f"{int(bound):,}"
    return f"{bound:g}"


def _whole(value, text: bool) -> int:
    if isinstance(value, bool):
        raise NumberError("whole_number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():  # NaN and infinities are not
        return int(value)
    if text and isinstance(value, str) and (digits := _short_ascii(value)) is not None:
        try:
            return int(digits)
        except ValueError:
            pass
    raise NumberError("whole_number")


def _float(value, text: bool) -> float:
    if isinstance(value, bool):
        raise NumberError("number")
    if text and isinstance(value, str) and (digits := _short_ascii(value)) is not None:
        try:
            value = float(digits)
        except ValueError:
            raise NumberError("number") from None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int of hundreds of digits, from a JSON body
            raise NumberError("number") from None
        if math.isfinite(number):
            return number
    raise NumberError("number")


def _short_ascii(value: str) -> str | None:
    value = value.strip()
    return value if value.isascii() and len(value) <= MAX_TEXT_CHARACTERS else None


def _out_of_range(lowest, highest, lowest_open: bool) -> NumberError:
    if lowest is None:
        return NumberError("at_most", highest=shown(highest))
    below = "more_than" if lowest_open else "at_least"
    if highest is None:
        return NumberError(below, lowest=shown(lowest))
    return NumberError(f"{below}_at_most", lowest=shown(lowest), highest=shown(highest))
