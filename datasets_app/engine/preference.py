"""Normalisers for preference data: pairs of answers (DPO) and answers marked
good or bad (KTO). Same contract as normalise.py's: (record, size, problems,
empty) for one source row.

Canonical records (see the common words in jobs/vocabulary.py):
    preference  {"messages": [prompt turns, ending with a user turn],
                 "chosen": str, "rejected": str}
    feedback    {"messages": [prompt turns, ending with a user turn],
                 "completion": str, "label": true|false}

A prompt is text (one user turn) or a list of chat messages. An answer is
text, a list of one assistant message (TRL's conversational format, OpenAI's
outputs), or the prompt's messages followed by one assistant message (a whole
conversation). A row's size is its prompt plus its longer answer: the longest
sequence a trainer sees for it, which is what a job cuts to its length.
"""

import json

from datasets_app.engine.errors import describe, shown
from datasets_app.engine.normalise import (
    _ANSWERED_BY,
    _MISSING,
    CHAT,
    Normalised,
    Turn,
    _blank,
    _json_cell,
    _problem,
    _turn,
)

_TEXT_OR_MESSAGES = "text or a list of messages"
_ANSWER_SHAPE = (
    "a list ending in one assistant message, after the prompt's messages if it repeats them"
)

# Every spelling of a verdict a feedback file is likely to hold, as it reads
# once stripped and lower-cased; anything else is a row error.
FEEDBACK_LABELS = {
    "true": True,
    "yes": True,
    "y": True,
    "good": True,
    "1": True,
    "up": True,
    "thumbs up": True,
    "👍": True,
    "false": False,
    "no": False,
    "n": False,
    "bad": False,
    "0": False,
    "down": False,
    "thumbs down": False,
    "👎": False,
}


def _turns_in_text(value: str):
    """A text cell (CSV, Parquet) that holds a JSON list of messages, as that list; else None.

    A prompt or an answer may be plain text that happens to start with "[":
    only a list of objects is read as messages, anything else stays text.
    """
    if not value.lstrip().startswith("["):
        return None
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return None
    if type(parsed) is list and parsed and all(type(turn) is dict for turn in parsed):
        return parsed
    return None


def _checked_turns(turns, path: str, problems: list) -> list[Turn] | None:
    """Each turn of a list checked as a chat message; None (and problems) if any is not."""
    before = len(problems)
    checked = [_turn(turn, f"{path}[{index}]", CHAT, problems) for index, turn in enumerate(turns)]
    return None if len(problems) > before else checked


def _prompt_turns(turns, path: str, problems: list) -> tuple[list[dict], int, str | None] | None:
    """(messages, size, first empty content's path) of a prompt given as messages,
    or None with problems."""
    if type(turns) is not list:
        problems.append(
            _problem(path, "wrong_type", expected=_TEXT_OR_MESSAGES, got=describe(turns))
        )
        return None
    if not turns:
        problems.append(_problem(path, "empty_prompt"))
        return None
    checked = _checked_turns(turns, path, problems)
    order = None if checked is None else _prompt_order_problem(checked)
    if order is not None:
        problems.append(order)
    if checked is None or order is not None:
        return None
    messages = [{"role": turn.role, "content": turn.content} for turn in checked]
    empty = next((turn.content_path for turn in checked if _blank(turn.content)), None)
    return messages, sum(len(turn.content) for turn in checked), empty


def _prompt_order_problem(turns: list[Turn]):
    """The first break of: an optional system message, then alternating turns
    ending with the user's. A prompt may open with the assistant's greeting:
    only its end matters to a trainer, which writes the answer after it."""
    previous = None
    for index, turn in enumerate(turns):
        if turn.role == "system":
            if index:
                return _problem(turn.role_path, "system_not_first")
            continue
        if previous is not None and turn.role != _ANSWERED_BY[previous]:
            return _problem(
                turn.role_path, "role_order", expected=_ANSWERED_BY[previous],
                previous=previous, got=shown(turn.raw_role), **CHAT.names,
            )  # fmt: skip
        previous = turn.role
    last = turns[-1]
    if last.role != "user":
        return _problem(last.role_path, "prompt_not_user_last", got=shown(last.raw_role))
    return None


def _prompt(row: dict, column: str, text_cells: bool, problems: list):
    """The prompt of a row: (messages, size, empty path), or None with problems."""
    value = row.get(column, _MISSING)
    if value is _MISSING:
        problems.append(_problem(column, "missing_field"))
        return None
    if type(value) is str:
        turns = _turns_in_text(value) if text_cells else None
        if turns is None:
            return (
                [{"role": "user", "content": value}],
                len(value),
                column if _blank(value) else None,
            )
        value = turns
    return _prompt_turns(value, column, problems)


def _answer(row: dict, column: str, prompt, text_cells: bool, problems: list, *, missing: str):
    """One answer's text, or None with problems. `prompt`: the prompt's messages, or
    None when they could not be read (a repeated conversation is then not compared)."""
    value = row.get(column, _MISSING)
    if value is _MISSING or value is None:
        problems.append(_problem(column, missing))
        return None
    if type(value) is str and text_cells:
        value = _turns_in_text(value) or value
    if type(value) is str:
        if _blank(value):
            problems.append(_problem(column, "empty_answer"))
            return None
        return value
    return _answer_turns(value, column, prompt, problems)


def _answer_turns(turns, column: str, prompt, problems: list) -> str | None:
    """The answer in a list of messages: its one assistant message, after the
    prompt's messages when it repeats them."""
    if type(turns) is not list:
        problems.append(
            _problem(column, "wrong_type", expected=_TEXT_OR_MESSAGES, got=describe(turns))
        )
        return None
    if not turns:
        problems.append(
            _problem(column, "bad_answer_turns", shape=_ANSWER_SHAPE, got="an empty list")
        )
        return None
    found = []
    checked = _checked_turns(turns, column, found)
    # A blank answer is the same problem whichever way it is written.
    problems.extend(
        (path, "empty_answer", {}) if code == "empty_reply" else (path, code, params)
        for path, code, params in found
    )
    if checked is None:
        return None
    *before, last = checked
    got = None
    if last.role != "assistant":
        got = f"a list ending in {shown(last.raw_role)}"
    elif (
        before
        and prompt is not None
        and [{"role": turn.role, "content": turn.content} for turn in before] != prompt
    ):
        got = "messages before the answer that are not the prompt's"
    if got is not None:
        problems.append(_problem(column, "bad_answer_turns", shape=_ANSWER_SHAPE, got=got))
        return None
    return last.content


def _pair(row: dict, columns, text_cells: bool, prompt=_MISSING, problems=None) -> Normalised:
    """A preference record from a row's prompt and its two answers. The prompt is
    read from `columns[0]` unless the caller read it: then `prompt` is its
    (messages, size, empty), or None when it could not be (its problems already
    in `problems`; the answers are still checked, their own problems being
    worth reporting with the prompt's)."""
    prompt_column, chosen_column, rejected_column = columns
    problems = [] if problems is None else problems
    if prompt is _MISSING:
        prompt = _prompt(row, prompt_column, text_cells, problems)
    messages = prompt[0] if prompt is not None else None
    chosen = _answer(row, chosen_column, messages, text_cells, problems, missing="missing_side")
    rejected = _answer(row, rejected_column, messages, text_cells, problems, missing="missing_side")
    if chosen is not None and rejected is not None and chosen.strip() == rejected.strip():
        problems.append(_problem(rejected_column, "same_answers", other=chosen_column))
    if problems or prompt is None:
        return (None, 0, problems, None)
    messages, size, empty = prompt
    record = {"messages": messages, "chosen": chosen, "rejected": rejected}
    return (record, size + max(len(chosen), len(rejected)), (), empty)


def normalise_preference(row: dict, columns, text_cells: bool) -> Normalised:
    return _pair(row, columns, text_cells)


def normalise_openai_preference(row: dict, columns, text_cells: bool) -> Normalised:
    """OpenAI's DPO line: {"input": {"messages": [...], "tools": ...}, "preferred_output":
    [assistant message], "non_preferred_output": [assistant message]}. Keys of
    `input` other than `messages` (tools, parallel_tool_calls) are not read."""
    input_column = columns[0]
    problems = []
    value = row.get(input_column, _MISSING)
    if value is _MISSING:
        problems.append(_problem(input_column, "missing_field"))
    elif text_cells and type(value) is str:
        value = _json_cell(value, input_column, problems)
    prompt = None
    if not problems:
        path = f"{input_column}.messages"
        turns = value.get("messages", _MISSING) if type(value) is dict else _MISSING
        if type(value) is not dict:
            expected = "an object with `messages`"
            problems.append(
                _problem(input_column, "wrong_type", expected=expected, got=describe(value))
            )
        elif turns is _MISSING:
            problems.append(_problem(path, "missing_field"))
        else:
            prompt = _prompt_turns(turns, path, problems)
    return _pair(row, columns, text_cells, prompt, problems)


def _feedback_label(row: dict, column: str, problems: list) -> bool | None:
    value = row.get(column, _MISSING)
    if value is _MISSING:
        problems.append(_problem(column, "missing_field"))
        return None
    if type(value) is bool:
        return value
    if type(value) in (int, float) and value in (0, 1):
        return bool(value)
    if type(value) is str:
        label = FEEDBACK_LABELS.get(value.strip().lower())
        if label is not None:
            return label
    number = type(value) in (int, float)
    problems.append(
        _problem(column, "bad_feedback_label", got=repr(value) if number else shown(value))
    )
    return None


def normalise_feedback(row: dict, columns, text_cells: bool) -> Normalised:
    prompt_column, completion_column, label_column = columns
    problems = []
    prompt = _prompt(row, prompt_column, text_cells, problems)
    messages = prompt[0] if prompt is not None else None
    completion = _answer(
        row, completion_column, messages, text_cells, problems, missing="missing_field"
    )
    label = _feedback_label(row, label_column, problems)
    if problems or prompt is None:
        return (None, 0, problems, None)
    messages, size, empty = prompt
    record = {"messages": messages, "completion": completion, "label": label}
    return (record, size + len(completion), (), empty)
