"""Turning one source record into the canonical record, or saying why not.

Every normaliser takes the source row (a dict), the source columns it reads
(the format's fields after the column mapping) and whether cells hold text
that may need parsing (CSV, Parquet), and returns a `Normalised` tuple:

    record    the canonical record, or None when the row has problems
    size      characters of text content (for the length statistics)
    problems  [(field, code, params)], empty when the row is fine
    empty     the field path of the first empty optional text, or None

Each format's record in formats.py names its normaliser.

Canonical records (see DESIGN.md):
    generation      {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}
    classification  {"text": str, "label": str}
Preference pairs and feedback are normalised in preference.py.
"""

import json
import math
from typing import NamedTuple

from datasets_app.engine.errors import describe, shown

ROLES = ("system", "user", "assistant")

# ShareGPT's speaker names and the canonical role each becomes.
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}

_MISSING = object()
_TEXT = "text"
_ANSWERED_BY = {"user": "assistant", "assistant": "user"}
_LIST_OF_MESSAGES = "a list of messages"


# (record, size, problems, empty), as the module docstring says: a plain tuple,
# as a NamedTuple costs a third of a microsecond a row to build.
Normalised = tuple[dict | None, int, list | tuple, str | None]


def _blank(text: str) -> bool:
    return not text or text.isspace()


def _problem(field, code, **params):
    return (field, code, params)


def _json_cell(value, column, problems):
    """A CSV/Parquet cell that holds JSON text, parsed; None (and a problem) if it is not JSON."""
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        problems.append(_problem(column, "invalid_json_cell", reason=error.msg, column=error.colno))
        return None
    except RecursionError:  # "[[[[…": json's decoder recurses once a level
        problems.append(_problem(column, "nested_too_deep"))
        return None


class Speakers(NamedTuple):
    """How a format spells its turns: the keys, the role names and what they mean."""

    keys: tuple[tuple[str, str], ...]  # (role key, content key) spellings, preferred first
    roles: dict[str, str]  # the file's role name -> canonical role
    names: dict[str, str]  # words for the roles in messages
    shape: str  # what one turn must be, for messages


CHAT = Speakers(
    keys=(("role", "content"),),
    roles={role: role for role in ROLES},
    names={
        "user": "user",
        "assistant": "assistant",
        "a_user": "a user",
        "an_assistant": "an assistant",
    },
    shape="an object with `role` and `content`",
)
# ShareGPT files in the wild also spell a turn {"role", "content"}.
SHAREGPT = Speakers(
    keys=(("from", "value"), ("role", "content")),
    roles=SHAREGPT_ROLES,
    names={"user": "human", "assistant": "gpt", "a_user": "a human", "an_assistant": "a gpt"},
    shape="an object with `from` and `value`",
)


class Turn(NamedTuple):
    role: str  # canonical
    raw_role: str  # as the file spells it
    content: str
    role_path: str
    content_path: str


def _turn(turn, path: str, speakers: Speakers, problems: list) -> Turn | None:
    """One turn, checked; None (and problems) when it is not a usable message."""
    if type(turn) is not dict:
        problems.append(_problem(path, "wrong_type", expected=speakers.shape, got=describe(turn)))
        return None
    role_key, content_key = next(
        (keys for keys in speakers.keys if keys[0] in turn), speakers.keys[0]
    )
    raw_role = turn.get(role_key, _MISSING)
    content = turn.get(content_key, _MISSING)
    role = speakers.roles.get(raw_role) if type(raw_role) is str else None
    role_path = f"{path}.{role_key}"
    if raw_role is _MISSING:
        problems.append(_problem(role_path, "missing_field"))
    elif role is None:
        allowed = ", ".join(speakers.roles)
        problems.append(_problem(role_path, "bad_role", allowed=allowed, got=shown(raw_role)))
    content_path = f"{path}.{content_key}"
    if content is _MISSING:
        problems.append(_problem(content_path, "missing_field"))
    elif type(content) is not str:
        problems.append(_problem(content_path, "wrong_type", expected=_TEXT, got=describe(content)))
    elif role == "assistant" and _blank(content):
        problems.append(_problem(content_path, "empty_reply"))
    else:
        return Turn(role, raw_role, content, role_path, content_path) if role is not None else None
    return None


def _conversation(turns, column: str, speakers: Speakers) -> Normalised:
    """Messages from a list of turns, checking roles, contents and their order."""
    if type(turns) is not list:
        problem = _problem(column, "wrong_type", expected=_LIST_OF_MESSAGES, got=describe(turns))
        return (None, 0, [problem], None)
    if not turns:
        return (None, 0, [_problem(column, "no_messages")], None)
    problems = []
    checked = [
        _turn(turn, f"{column}[{index}]", speakers, problems) for index, turn in enumerate(turns)
    ]
    if problems:
        return (None, 0, problems, None)
    order = _order_problem(checked, speakers.names)
    if order is not None:
        return (None, 0, [order], None)
    messages = [{"role": turn.role, "content": turn.content} for turn in checked]
    size = sum(len(turn.content) for turn in checked)
    empty = next((turn.content_path for turn in checked if _blank(turn.content)), None)
    return ({"messages": messages}, size, [], empty)


def _order_problem(turns: list[Turn], names: dict[str, str]):
    """The first break of: [system] user assistant user assistant ... assistant,
    or of system assistant (no user turn: OpenAI's data checks warn and its
    fine-tuning trains on it; stats.py warns)."""
    expected = "user"
    previous = None
    for index, turn in enumerate(turns):
        if turn.role == "system":
            if index:
                return _problem(turn.role_path, "system_not_first")
            continue
        if previous is None and index == 1 and turn.role == "assistant" and len(turns) == 2:
            return None
        if turn.role != expected:
            got = shown(turn.raw_role)
            if previous is None:
                return _problem(turn.role_path, "first_not_user", got=got, **names)
            return _problem(
                turn.role_path,
                "role_order",
                expected=names[expected],
                previous=names[previous],
                got=got,
                **names,
            )
        previous = turn.role
        expected = _ANSWERED_BY[turn.role]
    last = turns[-1]
    if last.role != "assistant":
        return _problem(last.role_path, "last_not_assistant", got=shown(last.raw_role), **names)
    return None


def _plain_chat(turns: list) -> tuple[list, int] | None:
    """(messages, text size) of a conversation with nothing to explain, else None.

    Most rows are like this: the quick pass lets them skip the full check,
    which explains everything else. The messages are rebuilt, not reused, so
    that equal records are equal bytes (key order included) for duplicates.
    """
    messages = []
    size = 0
    expected = "user"
    role = None
    for turn in turns:
        if type(turn) is not dict or len(turn) != 2:
            return None
        content = turn.get("content")
        if type(content) is not str or content.isspace() or not content:
            return None
        role = turn.get("role")
        if role == expected:
            expected = _ANSWERED_BY[role]
        elif role != "system" or size:
            return None
        size += len(content)
        messages.append({"role": role, "content": content})
    return (messages, size) if role == "assistant" else None


def normalise_chat(row: dict, columns, text_cells: bool) -> Normalised:
    (column,) = columns
    turns = row.get(column, _MISSING)
    if type(turns) is list:
        plain = _plain_chat(turns)
        if plain is not None:
            return ({"messages": plain[0]}, plain[1], (), None)
    turns, problems = _turns_cell(turns, column, text_cells)
    if problems:
        return (None, 0, problems, None)
    return _conversation(turns, column, CHAT)


def normalise_sharegpt(row: dict, columns, text_cells: bool) -> Normalised:
    (column,) = columns
    turns, problems = _turns_cell(row.get(column, _MISSING), column, text_cells)
    if problems:
        return (None, 0, problems, None)
    return _conversation(turns, column, SHAREGPT)


def _turns_cell(turns, column: str, text_cells: bool) -> tuple:
    """A conversation column's value: missing is a problem, and in files whose
    cells are text (CSV, TSV) it is parsed as JSON."""
    if turns is _MISSING:
        return None, [_problem(column, "missing_field")]
    problems = []
    if text_cells and type(turns) is str:
        turns = _json_cell(turns, column, problems)
    return turns, problems


def _text(row, column, problems, *, required=True):
    """The text in `column`, or None (with a problem when it is missing or not text)."""
    value = row.get(column, _MISSING)
    if value is _MISSING:
        if required:
            problems.append(_problem(column, "missing_field"))
        return None
    if type(value) is not str:
        if value is None and not required:
            return None
        problems.append(_problem(column, "wrong_type", expected=_TEXT, got=describe(value)))
        return None
    return value


def normalise_prompt_completion(row: dict, columns, text_cells: bool) -> Normalised:
    prompt_column, completion_column = columns
    problems = []
    prompt = _text(row, prompt_column, problems)
    completion = _text(row, completion_column, problems)
    if completion is not None and _blank(completion):
        problems.append(_problem(completion_column, "empty_reply"))
    if problems:
        return (None, 0, problems, None)
    return _exchange(prompt, completion, empty=prompt_column if _blank(prompt) else None)


def _exchange(prompt: str, reply: str, *, empty: str | None) -> Normalised:
    """One user turn and the assistant's reply: prompt/completion and Alpaca rows."""
    record = {
        "messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": reply},
        ]
    }
    return (record, len(prompt) + len(reply), [], empty)


def normalise_alpaca(row: dict, columns, text_cells: bool) -> Normalised:
    instruction_column, input_column, output_column = columns
    problems = []
    instruction = _text(row, instruction_column, problems)
    extra = _text(row, input_column, problems, required=False)
    output = _text(row, output_column, problems)
    if output is not None and _blank(output):
        problems.append(_problem(output_column, "empty_reply"))
    if problems:
        return (None, 0, problems, None)
    prompt = "\n\n".join(part for part in (instruction, extra) if part)
    return _exchange(prompt, output, empty=instruction_column if _blank(instruction) else None)


def normalise_text(row: dict, columns, text_cells: bool) -> Normalised:
    (column,) = columns
    problems = []
    text = _text(row, column, problems)
    if text is not None and _blank(text):
        problems.append(_problem(column, "empty_text"))
    if problems:
        return (None, 0, problems, None)
    # One assistant message: the whole text is what the model learns to write.
    return ({"messages": [{"role": "assistant", "content": text}]}, len(text), [], None)


def _label(value, column, problems):
    """The label as text: numbers and true/false are fine, lists and objects are not."""
    if type(value) is str:
        if _blank(value):
            problems.append(_problem(column, "empty_label"))
            return None
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    problems.append(_problem(column, "bad_label", got=describe(value)))
    return None


def normalise_text_label(row: dict, columns, text_cells: bool) -> Normalised:
    text_column, label_column = columns
    problems = []
    text = _text(row, text_column, problems)
    if text is not None and _blank(text):
        problems.append(_problem(text_column, "empty_text"))
    raw_label = row.get(label_column, _MISSING)
    if raw_label is _MISSING:
        problems.append(_problem(label_column, "missing_field"))
        label = None
    else:
        label = _label(raw_label, label_column, problems)
    if problems:
        return (None, 0, problems, None)
    return ({"text": text, "label": label}, len(text), problems, None)
