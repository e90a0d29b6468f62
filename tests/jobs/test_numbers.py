"""The one number reader: what it accepts, what it refuses, and in which words."""

import math

import pytest

from jobs.numbers import SENTENCES, NumberError, read_number, shown

WHOLE = "must be a whole number."
NUMBER = "must be a number."


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        (3, {"whole": True}, 3),
        (-1, {"whole": True, "lowest": -1}, -1),
        (3.0, {"whole": True}, 3),
        (2**70, {"whole": True}, 2**70),  # a whole number with no bound is any size
        ("42", {"whole": True}, 42),
        (" 7 ", {"whole": True}, 7),
        ("+5", {"whole": True}, 5),
        ("-0", {"whole": True}, 0),
        ("1" * 40, {"whole": True}, int("1" * 40)),
        (0.5, {"whole": False}, 0.5),
        (2, {"whole": False}, 2.0),
        ("1e-4", {"whole": False}, 1e-4),
        (" 0.7", {"whole": False}, 0.7),
        (1, {"whole": True, "lowest": 1, "highest": 200}, 1),
        (200, {"whole": True, "lowest": 1, "highest": 200}, 200),
        (1.0, {"whole": False, "lowest": 0, "highest": 1, "lowest_open": True}, 1.0),
        (1e-9, {"whole": False, "lowest": 0, "lowest_open": True}, 1e-9),
        (0, {"whole": False, "lowest": 0, "highest": 2}, 0.0),
        (3, {"whole": True, "text": False}, 3),
        (2.5, {"whole": False, "text": False}, 2.5),
    ],
)
def test_a_number_is_read_as_its_kind(value, options, expected):
    number = read_number(value, **options)
    assert number == expected
    assert type(number) is (int if options["whole"] else float)


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        (True, {"whole": True}, WHOLE),
        (False, {"whole": False}, NUMBER),
        (None, {"whole": True}, WHOLE),
        ("", {"whole": True}, WHOLE),
        ("   ", {"whole": False}, NUMBER),
        ([3], {"whole": True}, WHOLE),
        (2.5, {"whole": True}, WHOLE),
        ("2.5", {"whole": True}, WHOLE),
        ("3.0", {"whole": True}, WHOLE),
        ("three", {"whole": True}, WHOLE),
        ("hot", {"whole": False}, NUMBER),
        ("--5", {"whole": True}, WHOLE),
        ("0x10", {"whole": True}, WHOLE),
        ("٣", {"whole": True}, WHOLE),  # int() reads other scripts' digits; this does not
        ("٣", {"whole": False}, NUMBER),
        ("²", {"whole": True}, WHOLE),
        ("1" * 41, {"whole": True}, WHOLE),
        ("1" * 5000, {"whole": True}, WHOLE),  # past int()'s own 4,300-digit limit
        ("1" * 5000, {"whole": False}, NUMBER),
        (float("nan"), {"whole": True}, WHOLE),
        (float("nan"), {"whole": False}, NUMBER),
        (float("inf"), {"whole": True}, WHOLE),
        (-math.inf, {"whole": False}, NUMBER),
        ("nan", {"whole": False}, NUMBER),
        ("inf", {"whole": False}, NUMBER),
        ("1e400", {"whole": False}, NUMBER),
        ("1e400", {"whole": True}, WHOLE),
        (10**400, {"whole": False}, NUMBER),  # past a float's range
        ("3", {"whole": True, "text": False}, WHOLE),
        ("0.5", {"whole": False, "text": False}, NUMBER),
        (0, {"whole": True, "lowest": 1, "highest": 200}, "must be at least 1 and at most 200."),
        (
            "201",
            {"whole": True, "lowest": 1, "highest": 200},
            "must be at least 1 and at most 200.",
        ),
        (0, {"whole": True, "lowest": 1, "highest": 1000}, "must be at least 1 and at most 1,000."),
        (-2, {"whole": True, "lowest": -1}, "must be at least -1."),
        (2**31, {"whole": True, "highest": 2**31 - 1}, "must be at most 2,147,483,647."),
        (
            0,
            {"whole": False, "lowest": 0, "highest": 2, "lowest_open": True},
            "must be more than 0 and at most 2.",
        ),
        (
            1.5,
            {"whole": False, "lowest": 0, "highest": 1, "lowest_open": True},
            "must be more than 0 and at most 1.",
        ),
        (-0.5, {"whole": False, "lowest": 0, "lowest_open": True}, "must be more than 0."),
        (
            0.2,
            {"whole": False, "lowest": 0, "highest": 0.1, "lowest_open": True},
            "must be more than 0 and at most 0.1.",
        ),
        (
            -1,
            {"whole": True, "lowest": 0, "highest": 2**32 - 1},
            "must be at least 0 and at most 4,294,967,295.",
        ),
    ],
)
def test_a_refusal_says_why_in_the_tables_words(value, options, message):
    with pytest.raises(NumberError) as refused:
        read_number(value, **options)
    assert refused.value.message == message
    assert str(refused.value) == message
    assert refused.value.sentence == message[0].upper() + message[1:]
    assert isinstance(refused.value, ValueError)  # readers that catch ValueError keep working


@pytest.mark.parametrize(
    ("bound", "words"),
    [(0, "0"), (1_000, "1,000"), (2.0, "2"), (0.5, "0.5"), (1e-5, "1e-05"), (-1, "-1")],
)
def test_a_bound_is_shown_like_a_number(bound, words):
    assert shown(bound) == words


def test_every_sentence_is_a_fragment_that_ends_with_a_full_stop():
    for sentence in SENTENCES.values():
        assert sentence.startswith("must be ") and sentence.endswith(".")
