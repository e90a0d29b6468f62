"""Reading a configuration: a job file's bytes into a document (YAML, safely),
and a document into a `JobConfig` (shape and types only).

Untrusted input throughout: a job file may hold aliases or deep nesting, a
document any keys and values. Every refusal is a `ConfigError` naming the
field; sentences quote at most QUOTED_CHARACTERS of what the user wrote.
Ranges and combinations are `checks.check_config`'s.
"""

from __future__ import annotations

import dataclasses

import yaml

from jobs.numbers import read_number

from .schema import CONFIG_VERSION, SECTIONS, ConfigError, FieldError, JobConfig

# --- reading a job file -------------------------------------------------------

# A job file nests four deep (document, section, field, a list's item); a few
# more levels let a misplaced field reach read_document and its own message,
# and the cap keeps PyYAML's recursive composer far from Python's stack limit.
MAX_FILE_DEPTH = 10
# How much of an untrusted text an error sentence quotes.
QUOTED_CHARACTERS = 40


class _JobFileRefused(Exception):
    def __init__(self, message: str):
        self.message = message


class _JobFileLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and deep nesting.

    An alias makes a node shared, not copied, so a few hundred bytes of
    nested aliases stand for billions of values: harmless until something
    walks or prints them. No job file Tailor writes has one.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _JobFileRefused(
                f"uses a YAML alias (*{clipped(event.anchor)}) on line "
                f"{event.start_mark.line + 1}; a Tailor job file has none: write the value out."
            )
        self.depth += 1
        try:
            if self.depth > MAX_FILE_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise _JobFileRefused(
                    f"nests deeper than a Tailor job file does (more than {MAX_FILE_DEPTH} "
                    f"levels, on line {line})."
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_job_file(raw: bytes):
    """The document in a job file's bytes (YAML, or JSON, which is YAML too).

    Raises ConfigError, on `config_file`, for text that is not UTF-8 YAML or
    uses what a job file never does (aliases, deep nesting). Checks no fields.
    """
    try:
        return yaml.load(raw.decode("utf-8"), Loader=_JobFileLoader)  # noqa: S506 (a SafeLoader)
    except _JobFileRefused as refused:
        message = refused.message
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        message = f"is not valid YAML (line {where.line + 1})." if where else "is not valid YAML."
    except UnicodeDecodeError:
        message = "is not valid YAML (it is not UTF-8 text)."
    except ValueError:
        # PyYAML builds ints and dates itself: a number of thousands of digits
        # or a 30 February gets past the parser and fails here.
        message = "is not valid YAML: a number or date in it cannot be read."
    raise ConfigError([FieldError("config_file", message)])


def clipped(text: str) -> str:
    """`text` cut to what an error sentence quotes, a lone surrogate written as
    its escape (`\\ud800`): the answer that quotes it must encode as UTF-8."""
    if len(text) > QUOTED_CHARACTERS:
        text = text[: QUOTED_CHARACTERS - 1] + "…"
    return text.encode("utf-8", "backslashreplace").decode()


def _field_name(key) -> str:
    # Keys come from the user's file or body: a sentence names them, clipped.
    return clipped(key if isinstance(key, str) else f"{type(key).__name__} key")


# --- reading a document -------------------------------------------------------


def _as_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "on", "off", "1", "0"}:
        return value.lower() in {"true", "on", "1"}
    raise ValueError("must be true or false.")


# A number's NumberError is a ValueError: `_coerce` records its sentence.
# YAML and form values may be text ("3", "1e-4"); ranges are checks.check_config's.
def _as_int(value):
    return read_number(value, whole=True)


def _as_float(value):
    return read_number(value, whole=False)


def _storable(text: str) -> str:
    """`text` stripped, when a database can store it; ValueError otherwise.

    PostgreSQL's text holds no NUL character, and no database driver encodes
    a lone surrogate (a JSON body's "\\ud800"): a name, id or module name with
    either failed the query that looks it up, or the insert that stores the job.
    """
    if "\x00" in text:
        raise ValueError("must be text without NUL characters.")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError(
            "holds a lone surrogate escape (such as \\ud800), which is not text."
        ) from None
    return text.strip()


def _as_list(value):
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        try:
            return [_storable(v) for v in value]
        except ValueError:
            pass
    raise ValueError("must be a list of module names.")


def _as_tags(value):
    if value is None or value == "":
        return []
    try:
        return _as_list(value)
    except ValueError:
        raise ValueError("must be a list of tags.") from None


def _as_ids(value):
    if value is None or value == "":
        return []
    try:
        return _as_list(value)
    except ValueError:
        raise ValueError("must be a list of job ids.") from None


def _as_optional_str(value):
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return _storable(value)
    raise ValueError("must be text.")


def _as_str(value):
    if isinstance(value, str):
        return _storable(value)
    # A name YAML reads as a number (`name: 2024`); a longer number is no name.
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**20:
        return str(value)
    raise ValueError("must be text.")


def _as_floats(value):
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        try:
            return [_as_float(v) for v in value]
        except ValueError:
            pass
    raise ValueError("must be a list of numbers.")


_COERCERS = {
    "floats": _as_floats,
    bool: _as_bool,
    int: _as_int,
    float: _as_float,
    "list": _as_list,
    "tags": _as_tags,
    "ids": _as_ids,
    "optional_str": _as_optional_str,
    str: _as_str,
}


def _coerce(name: str, value, kind, errors: list[FieldError]):
    """`value` as `kind`, or None after recording an error."""
    try:
        return _COERCERS[kind](value)
    except ValueError as exc:
        errors.append(FieldError(name, str(exc)))
        return None


def _kind_of(dc_field: dataclasses.Field):
    annotation = dc_field.type
    if annotation in ("bool", bool):
        return bool
    if annotation in ("int", int):
        return int
    if annotation in ("float", float):
        return float
    if annotation in ("list[str]", "list[float]"):
        return dc_field.metadata.get("items", "list")
    if annotation == "str | None":
        return "optional_str"
    return str


def _read_section(section, key: str, value: dict, errors: list[FieldError]) -> None:
    fields = {f.name: f for f in dataclasses.fields(section)}
    for name, raw in value.items():
        dotted = f"{key}.{_field_name(name)}"
        if name not in fields:
            errors.append(FieldError(dotted, "is not a known field."))
            continue
        kind = _kind_of(fields[name])
        coerced = _coerce(dotted, raw, kind, errors)
        if coerced is not None or kind == "optional_str":
            setattr(section, name, coerced)


def read_document(document, *, base: JobConfig | None = None) -> JobConfig:
    """A JobConfig from a (possibly partial) document, on top of `base`.

    Checks shape and types only (unknown keys, numbers that are not numbers);
    `check_config` checks ranges and combinations. Raises ConfigError.
    """
    errors: list[FieldError] = []
    if not isinstance(document, dict):
        raise ConfigError([FieldError("config", "must be a mapping of sections.")])
    config = base or JobConfig()
    config = JobConfig(  # a deep copy: `base` stays as it was
        name=config.name,
        preset=config.preset,
        objective=config.objective,
        data=dataclasses.replace(config.data),
        model=dataclasses.replace(config.model),
        lora=dataclasses.replace(config.lora, target_modules=list(config.lora.target_modules)),
        training=dataclasses.replace(config.training),
        tracking=dataclasses.replace(config.tracking, wandb_tags=list(config.tracking.wandb_tags)),
        preference=dataclasses.replace(config.preference),
        merge=dataclasses.replace(
            config.merge, sources=list(config.merge.sources), weights=list(config.merge.weights)
        ),
    )
    version = document.get("tailor_config", CONFIG_VERSION)
    if type(version) is not int:
        errors.append(FieldError("tailor_config", f"must be the version number {CONFIG_VERSION}."))
    elif version != CONFIG_VERSION:
        errors.append(
            FieldError(
                "tailor_config",
                f"version {clipped(str(version))} is not supported (this is {CONFIG_VERSION}).",
            )
        )
    for key, value in document.items():
        if key == "tailor_config":
            continue
        if key in ("name", "preset", "objective"):
            text = _coerce(key, value, str, errors)
            if text is not None:
                setattr(config, key, text)
            continue
        section_class = SECTIONS.get(key) if isinstance(key, str) else None
        if section_class is None:
            errors.append(FieldError(_field_name(key), "is not a configuration section."))
            continue
        if value is None:
            continue
        if not isinstance(value, dict):
            errors.append(FieldError(key, "must be a mapping of fields."))
            continue
        _read_section(getattr(config, key), key, value, errors)
    if errors:
        raise ConfigError(errors)
    return config
