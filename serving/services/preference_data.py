"""Votes become preference data: the playground's verdicts on pairs of
answers, as rows of a preference dataset (a prompt, the chosen answer and
the rejected one).

A user only ever reads their own votes; staff may read another voter's, and
making a dataset from them is written to the audit log. Ties say nothing
about which answer is better, so they are left out (and counted), as are
votes whose answers cannot teach a preference: one missing or failed, both
the same, a prompt that does not end with the user's turn, or a
classifier's labels (which are not answers). The dataset is an ordinary
upload (`datasets_app.services.create_dataset`, format "preference") that
validation then checks like any other, carrying its provenance: which
votes, which models, which filters.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.models import Action
from audit.services import record
from datasets_app import services as datasets
from jobs.vocabulary import PREFERENCE, SEQUENCE_CLASSIFICATION
from serving.models import Generation, GenerationStatus, Vote, VoteChoice
from serving.services import votes as vote_tallies

# The format the rows are written in (datasets_app/engine): {"prompt": [chat
# messages] or text, "chosen": text, "rejected": text}.
ROW_FORMAT = PREFERENCE
# Between the two names of a pair in the models filter ("a vs b"): model
# names hold no spaces (catalog ids, "ft:base:owner:suffix:id").
PAIR_SEPARATOR = " vs "

# Why a vote was not used, in the page's words, most common first.
SKIP_REASONS = {
    "missing": "an answer is missing or failed",
    "identical": "both answers are the same",
    "classification": "a classifier's labels, not answers",
    # A chat may end with a system turn; a preference prompt ends with the
    # user's, whose answers the pair compares.
    "prompt": "the prompt does not end with a user message",
}


class PreferenceDataError(Exception):
    """A request the votes cannot answer, in a sentence naming the field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class VoteFilters:
    """Which votes: `models` one name (any vote involving it) or two (that
    pair); `since`/`until` days of the vote, inclusive; `voter` whose votes
    (the asker's own unless staff chose another)."""

    voter: object
    models: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None

    def as_provenance(self) -> dict:
        return {
            "models": list(self.models),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "voter": self.voter.get_username(),
        }


@dataclass(frozen=True)
class PreferencePair:
    """One kept vote, as a row: the prompt's chat turns and the two answers."""

    vote_id: int
    voted_at: object
    prompt: list[dict]
    chosen: str
    rejected: str
    chosen_model: str
    rejected_model: str
    # The names the panes showed (a job's name; "… (base)").
    chosen_label: str = ""
    rejected_label: str = ""

    def as_row(self) -> dict:
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}


@dataclass
class Selection:
    """The votes the filters select, kept as pairs or counted out."""

    filters: VoteFilters
    pairs: list[PreferencePair] = field(default_factory=list)
    ties: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def skipped_reasons(self) -> list[tuple[str, int]]:
        """(sentence, count) for each reason that left votes out."""
        return [(SKIP_REASONS[key], n) for key, n in self.skipped.items() if n]

    @property
    def models(self) -> list[str]:
        names = {p.chosen_model for p in self.pairs} | {p.rejected_model for p in self.pairs}
        return sorted(names)

    def provenance(self) -> dict:
        days = [timezone.localdate(p.voted_at) for p in self.pairs]
        return {
            "kind": "votes",
            "votes": [p.vote_id for p in self.pairs],
            "models": self.models,
            "filters": self.filters.as_provenance(),
            "voters": 1,
            "pairs": len(self.pairs),
            "ties_left_out": self.ties,
            "skipped": dict(self.skipped),
            "first_vote": min(days).isoformat() if days else None,
            "last_vote": max(days).isoformat() if days else None,
        }


# --- reading the filters ---------------------------------------------------------------------


def _day(value, name: str, label: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise PreferenceDataError(
            name, f"{label}: '{value}' is not a date; write it as 2026-12-02."
        ) from None


def _shown(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def _voter(user, username) -> object:
    """The asker, or for staff the user named `username`."""
    if username in (None, "") or username == user.get_username():
        return user
    if not user.is_staff:
        # Anyone else's votes are not there for a non-staff user: the same
        # answer as for a name that does not exist.
        raise PreferenceDataError("voter", "You can make a dataset from your own votes only.")
    found = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    if found is None:
        raise PreferenceDataError("voter", f"There is no user called '{username}'.")
    return found


def read_filters(user, query) -> VoteFilters:
    """The filters of a page request (`models`, `since`, `until`, `voter`);
    PreferenceDataError names the field that cannot be read."""
    models = tuple(n for n in (query.get("models") or "").split(PAIR_SEPARATOR) if n.strip())
    if len(models) > 2:
        raise PreferenceDataError("models", "Choose one model or one pair of models.")
    since = _day(query.get("since"), "since", "From")
    until = _day(query.get("until"), "until", "To")
    if since and until and since > until:
        raise PreferenceDataError("until", f"To: {_shown(until)} is before From ({_shown(since)}).")
    return VoteFilters(
        voter=_voter(user, query.get("voter")),
        models=tuple(n.strip() for n in models),
        since=since,
        until=until,
    )


# --- choosing the votes ----------------------------------------------------------------------


def model_choices(voter) -> list[tuple[str, str]]:
    """(value, label) of the models filter: each pair the voter voted on, as
    the playground's tallies show it, then each model alone."""
    tallies = vote_tallies.tallies_as_seen(voter)
    choices = [
        (f"{t.left}{PAIR_SEPARATOR}{t.right}", f"{t.left_label} vs {t.right_label}")
        for t in tallies
    ]
    singles: dict[str, str] = {}
    for t in tallies:
        singles.setdefault(t.left, t.left_label)
        singles.setdefault(t.right, t.right_label)
    choices += [(name, f"Any vote on {label}") for name, label in sorted(singles.items())]
    return choices


def voter_choices() -> list[str]:
    """Staff: the usernames of everyone who has voted."""
    User = get_user_model()
    return list(
        User.objects.filter(votes__isnull=False)
        .distinct()
        .order_by(User.USERNAME_FIELD)
        .values_list(User.USERNAME_FIELD, flat=True)
    )


def _selected_votes(filters: VoteFilters):
    rows = Vote.objects.filter(owner=filters.voter).select_related("generation")
    if len(filters.models) == 2:
        low, high = sorted(filters.models)
        rows = rows.filter(model_a=low, model_b=high)
    elif filters.models:
        name = filters.models[0]
        rows = rows.filter(Q(model_a=name) | Q(model_b=name))
    if filters.since:
        rows = rows.filter(created_at__date__gte=filters.since)
    if filters.until:
        rows = rows.filter(created_at__date__lte=filters.until)
    return rows.order_by("created_at", "pk")


def _answer(generation: Generation, model: str) -> str | None:
    """The text `model`'s pane answered, or None when it has none to show."""
    names = generation.model_names
    if model not in names:
        return None
    results = generation.results or []
    index = names.index(model)
    result = results[index] if index < len(results) else None
    if not result or result.get("error") or result.get("finish_reason") == "error":
        return None
    text = result.get("text") or ""
    return text if text.strip() else None


def prompt_of(generation: Generation) -> list[dict]:
    """The prompt as chat turns: a raw-text generation's text is one user turn."""
    if generation.messages:
        return [{"role": m["role"], "content": m["content"]} for m in generation.messages]
    return [{"role": "user", "content": generation.text}]


def select_pairs(filters: VoteFilters) -> Selection:
    """The voter's votes under `filters`, oldest first: kept as pairs, or
    counted as ties or as skipped (by reason). Reads the database only."""
    selection = Selection(filters=filters, skipped={key: 0 for key in SKIP_REASONS})
    for vote in _selected_votes(filters):
        generation = vote.generation
        if vote.winner == VoteChoice.TIE:
            selection.ties += 1
            continue
        if generation.task == SEQUENCE_CLASSIFICATION:
            selection.skipped["classification"] += 1
            continue
        winner, loser = (
            (vote.model_a, vote.model_b) if vote.winner == VoteChoice.A
            else (vote.model_b, vote.model_a)
        )  # fmt: skip
        chosen = _answer(generation, winner)
        rejected = _answer(generation, loser)
        if generation.status != GenerationStatus.SUCCEEDED or chosen is None or rejected is None:
            selection.skipped["missing"] += 1
            continue
        if chosen.strip() == rejected.strip():
            selection.skipped["identical"] += 1
            continue
        prompt = prompt_of(generation)
        if prompt[-1]["role"] != "user":
            selection.skipped["prompt"] += 1
            continue
        labels = {pane["model"]: pane.get("label") or pane["model"] for pane in generation.panes}
        selection.pairs.append(
            PreferencePair(
                vote_id=vote.pk,
                voted_at=vote.created_at,
                prompt=prompt,
                chosen=chosen,
                rejected=rejected,
                chosen_model=winner,
                rejected_model=loser,
                chosen_label=labels.get(winner, winner),
                rejected_label=labels.get(loser, loser),
            )
        )
    return selection


def none_kept_sentence(selection: Selection) -> str:
    """Why there is nothing to make a dataset of, in a sentence."""
    if not (selection.ties or selection.skipped_total):
        return "No votes match these filters: vote on pairs of answers in the playground first."
    left_out = []
    if selection.ties:
        left_out.append(f"{selection.ties:,} tie{'s' if selection.ties != 1 else ''}")
    left_out += [f"{n:,} where {reason}" for reason, n in selection.skipped_reasons]
    return (
        "None of the votes that match can be used ("
        + "; ".join(left_out)
        + "): vote A or B on pairs of different answers, or widen the filters."
    )


# --- making the dataset ----------------------------------------------------------------------


def default_name() -> str:
    return f"Preferences from votes, {_shown(timezone.localdate())}"


def create_preference_dataset(user, filters: VoteFilters, *, name: str = ""):
    """A new dataset of `user` holding the kept pairs, one JSONL row each, in
    the preference format, with its provenance; validation is queued as for
    an upload. Raises PreferenceDataError when no vote can be used (no
    dataset is made), and what `create_dataset` raises (DatasetInputError,
    QuotaExceeded, StorageError). Staff making one from another voter's
    votes is recorded in the audit log (an export of that user's votes)."""
    selection = select_pairs(filters)
    if not selection.pairs:
        raise PreferenceDataError("votes", none_kept_sentence(selection))
    with tempfile.TemporaryDirectory(prefix="tailor-votes-") as folder:
        path = Path(folder) / "preferences-from-votes.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for pair in selection.pairs:
                out.write(json.dumps(pair.as_row(), ensure_ascii=False) + "\n")
        with transaction.atomic(), path.open("rb") as handle:
            dataset = datasets.create_dataset(
                user,
                upload=File(handle, name=path.name),
                name=name.strip() or default_name(),
                requested_format=ROW_FORMAT,
                provenance=selection.provenance(),
            )
            voter = filters.voter
            if voter.pk != user.pk:
                record(
                    Action.EXPORT,
                    target_type="serving.vote",
                    target_name=f"votes of {voter.get_username()}",
                    owner=voter,
                    actor=user,
                    detail={
                        "dataset": str(dataset.pk),
                        "votes": [p.vote_id for p in selection.pairs],
                    },
                )
    return dataset
