"""A job's owner organises their runs: tags, a note, a star.

Contract:
- `access_own_job(user, job_id)` is the owner's job, or the 404 of a missing
  one for anyone else, staff included: tags and notes are the owner's own
  way of finding their runs, so nobody else writes them.
- `check_organisation(fields)` reads what a form or an API body sends
  (`tags`, `note`, `starred`; any of them) and returns an `Organisation`, or
  raises `OrganisationInvalid` naming every problem. Problems are data
  (field, code, values), made into sentences once, by MESSAGES.
- `organise_job(job, organisation)` writes what the organisation holds,
  in one transaction with its audit entry (`update`, the fields changed).
  Only those columns are written: a worker may be writing the job's progress
  at the same moment, and `updated_at` (which the ETA is counted from) stays.

Tags: at most MAX_TAGS per job, each 1 to MAX_TAG_CHARACTERS letters,
digits, spaces, hyphens, underscores and full stops. A comma-separated text
or a list; blank entries are skipped, runs of spaces become one, and a tag
given twice (whatever its case) is kept once, as first written.
"""

import re
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Prefetch

from audit.models import Action
from audit.services import record
from jobs.models import FineTuneJob, TaggedJob
from studio.services.access import one_or_404

MAX_TAGS = 10
MAX_TAG_CHARACTERS = 40
MAX_NOTE_CHARACTERS = FineTuneJob._meta.get_field("note").max_length
FIELDS = ("tags", "note", "starred")
# What a form's checkbox or an API's text may say for yes and no.
YES, NO = {"true", "1", "on", "yes"}, {"false", "0", "off", "no", ""}
ALLOWED_TAG = re.compile(r"[^\W_]|[ _.-]")  # a letter or digit, or one of " _.-"
# A tag a sentence quotes is cut to this many characters.
QUOTED_CHARACTERS = MAX_TAG_CHARACTERS

# code -> sentence; a page puts the field's label before it, the API its name.
MESSAGES = {
    "too_many_tags": "at most {limit} tags per job (this gives {count}).",
    "tag_too_long": "“{tag}” is {length:,} characters long; a tag has at most {limit}.",
    "tag_characters": (
        "“{tag}” has {characters}; a tag holds letters, digits, spaces, hyphens (-), "
        "underscores (_) and full stops (.) only."
    ),
    "tags_not_text": "must be a list of tags, or one text of tags separated by commas.",
    "note_too_long": "at most {limit:,} characters (this has {length:,}).",
    "note_not_text": "must be text.",
    "note_nul": "must be text without NUL characters.",
    "note_surrogate": "holds a lone surrogate escape (such as \\ud800), which is not text.",
    "starred_not_yes_no": "must be true or false.",
    "not_changeable": "cannot be changed here; a job's tags, note and starred can.",
}


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    values: dict = field(default_factory=dict)

    @property
    def message(self) -> str:
        return MESSAGES[self.code].format(**self.values)


class OrganisationInvalid(ValueError):
    """What was sent cannot be kept; `problems` names every one."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))

    def as_dict(self) -> dict[str, list[str]]:
        """field -> its sentences, as DRF's ValidationError and the pages take them."""
        found: dict[str, list[str]] = {}
        for problem in self.problems:
            found.setdefault(problem.field, []).append(problem.message)
        return found


@dataclass(frozen=True)
class Organisation:
    """What to change; None: leave as it is."""

    tags: list[str] | None = None
    note: str | None = None
    starred: bool | None = None


def access_own_job(user, job_id) -> FineTuneJob:
    """The user's own job; the same 404 for missing jobs and everyone else's (staff too)."""
    return one_or_404(FineTuneJob.objects.filter(owner_id=user.pk), job_id, "No such job.")


# --- reading ----------------------------------------------------------------------------


def _printable(text: str) -> str:
    """`text` as an answer can encode it: a lone surrogate ("\\ud800" in a
    JSON body) written as its escape."""
    return text.encode("utf-8", "backslashreplace").decode()


def _quoted(tag: str) -> str:
    tag = tag if len(tag) <= QUOTED_CHARACTERS else tag[: QUOTED_CHARACTERS - 1] + "…"
    return _printable(tag)


def _characters(refused: list[str]) -> str:
    """“#” or “#” and “/”: the characters a tag may not hold, each once."""
    names = [f"“{_printable(c)}”" for c in dict.fromkeys(refused)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def read_tags(value) -> tuple[list[str], list[Problem]]:
    """(the tags, the problems) of a comma-separated text or a list of texts."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
        return [], [Problem("tags", "tags_not_text")]
    tags: dict[str, str] = {}  # casefolded -> as first written
    problems = []
    for raw in value:
        tag = " ".join(raw.split())
        if not tag:
            continue
        refused = [c for c in tag if not ALLOWED_TAG.fullmatch(c)]
        if refused:
            values = {"tag": _quoted(tag), "characters": _characters(refused)}
            problems.append(Problem("tags", "tag_characters", values))
        elif len(tag) > MAX_TAG_CHARACTERS:
            values = {"tag": _quoted(tag), "length": len(tag), "limit": MAX_TAG_CHARACTERS}
            problems.append(Problem("tags", "tag_too_long", values))
        tags.setdefault(tag.casefold(), tag)
    if len(tags) > MAX_TAGS:
        values = {"limit": MAX_TAGS, "count": len(tags)}
        problems.insert(0, Problem("tags", "too_many_tags", values))
    return list(tags.values()), problems


def read_yes_no(value) -> bool | None:
    """True or False from a boolean or a form's or query's word; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in YES | NO:
        return value.strip().lower() in YES
    return None


def check_organisation(fields) -> Organisation:
    """The changes `fields` (a mapping) asks for, or OrganisationInvalid."""
    problems = [Problem(name, "not_changeable") for name in fields if name not in FIELDS]
    tags = note = starred = None
    if "tags" in fields:
        tags, found = read_tags(fields["tags"])
        problems += found
    if "note" in fields:
        note = fields["note"]
        if not isinstance(note, str):
            problems.append(Problem("note", "note_not_text"))
        elif "\x00" in note:  # PostgreSQL's text holds none
            problems.append(Problem("note", "note_nul"))
        elif _printable(note) != note:
            problems.append(Problem("note", "note_surrogate"))
        else:
            # A browser sends a textarea's line ends as CRLF: count them as one character.
            note = note.replace("\r\n", "\n").strip()
            if len(note) > MAX_NOTE_CHARACTERS:
                values = {"limit": MAX_NOTE_CHARACTERS, "length": len(note)}
                problems.append(Problem("note", "note_too_long", values))
    if "starred" in fields:
        starred = read_yes_no(fields["starred"])
        if starred is None:
            problems.append(Problem("starred", "starred_not_yes_no"))
    if problems:
        raise OrganisationInvalid(problems)
    return Organisation(tags=tags, note=note, starred=starred)


# --- writing ----------------------------------------------------------------------------


# What a list prefetches to name each job's tags in one query. Not taggit's
# own prefetch_related("tags"): it matches the tags to their jobs by the raw
# column, which for a UUID key (a hex text in SQLite) never equals the job's id.
WITH_TAGS = Prefetch("taggedjob_set", queryset=TaggedJob.objects.select_related("tag"))


def tag_names(job: FineTuneJob) -> list[str]:
    """The job's tags in alphabetical order (from WITH_TAGS when the list prefetched it)."""
    prefetched = getattr(job, "_prefetched_objects_cache", {}).get("taggedjob_set")
    if prefetched is not None:
        names = [item.tag.name for item in prefetched]
    else:
        names = list(job.tags.values_list("name", flat=True))
    return sorted(names, key=str.casefold)


def organise_job(job: FineTuneJob, organisation: Organisation) -> FineTuneJob:
    """Write `organisation` onto `job` (found by `access_own_job`) and audit
    what changed; the job returned holds the new values. Nothing that
    changes nothing is written or audited."""
    columns = {}
    if organisation.note is not None and organisation.note != job.note:
        columns["note"] = organisation.note
    if organisation.starred is not None and organisation.starred != job.starred:
        columns["starred"] = organisation.starred
    new_tags = organisation.tags
    if new_tags is not None and sorted(new_tags, key=str.casefold) == tag_names(job):
        new_tags = None
    if not columns and new_tags is None:
        return job
    with transaction.atomic():
        if columns:
            FineTuneJob.objects.filter(pk=job.pk).update(**columns)
            for name, value in columns.items():
                setattr(job, name, value)
        if new_tags is not None:
            job.tags.set(new_tags)
        detail = {"changed": [*columns, *(["tags"] if new_tags is not None else [])]}
        if new_tags is not None:
            detail["tags"] = new_tags
        if "starred" in columns:
            detail["starred"] = columns["starred"]
        record(Action.UPDATE, job, detail=detail)
    if new_tags is not None:
        # The prefetch the list made (if any) is stale now.
        getattr(job, "_prefetched_objects_cache", {}).pop("taggedjob_set", None)
    return job
