"""Telling the file type from a name and the record format from the keys."""

from collections import Counter
from collections.abc import Iterable
from pathlib import PurePath

from datasets_app.engine.formats import EXTENSIONS, SIGNATURES


def detect_file_type(filename: str) -> str | None:
    """The file type its extension names (case-insensitive), or None."""
    return EXTENSIONS.get(PurePath(filename).suffix.lower())


def format_of_keys(keys: Iterable[str], column_mapping: dict[str, str] | None = None) -> str | None:
    """The format one record's keys match, or None.

    A column mapping (canonical field -> source column) counts a mapped
    column as the field it stands for.
    """
    present = set(keys)
    if column_mapping:
        present |= {name for name, column in column_mapping.items() if column in present}
    for format, fields in SIGNATURES:
        if fields <= present:
            return format
    return None


def detect_format(
    key_sets: Iterable[Iterable[str]], column_mapping: dict[str, str] | None = None
) -> str | None:
    """The format most of the given records match; ties go to the more specific format."""
    votes = Counter(format_of_keys(keys, column_mapping) for keys in key_sets)
    votes.pop(None, None)
    if not votes:
        return None
    best = max(votes.values())
    return next(format for format, _ in SIGNATURES if votes.get(format) == best)
