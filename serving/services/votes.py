"""Votes as the playground shows them: the pair the way round it was seen.

Votes are stored in name order (serving/models.py `Vote`), so that the same
pair is counted together whichever pane each model was in. The page shows
each pair as the user last saw it, by the names the panes carried: the
model of the left pane on the left, its wins on the left. A vote cast on a
pair of answers already voted on replaces the earlier one; the sentence
made here says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from serving.models import Generation, Vote, VoteChoice
from serving.services import generations

CHOICE_WORDS = {"a": "A is better", "b": "B is better", "tie": "a tie"}


def _as_shown(winner: str, stored_a: str, shown_a: str) -> str:
    """A stored winner ("a", "b", "tie" of the name-ordered pair) as the pair was shown."""
    if stored_a == shown_a:
        return winner
    return {"a": "b", "b": "a"}.get(winner, winner)


def _labels(generation: Generation) -> dict[str, str]:
    return {pane["model"]: pane.get("label") or pane["model"] for pane in generation.panes}


@dataclass(frozen=True)
class CastVote:
    """A vote just cast, as shown: `choice` and `previous` are "a", "b" or "tie"
    of (model_a, model_b); `previous` is None for a first vote."""

    model_a: str
    model_b: str
    label_a: str
    label_b: str
    choice: str
    previous: str | None

    def _verdict(self, choice: str) -> str:
        if choice == VoteChoice.TIE:
            return "a tie"
        label = self.label_a if choice == VoteChoice.A else self.label_b
        return f"{CHOICE_WORDS[choice]} ({label})"

    @property
    def sentence(self) -> str:
        verdict = self._verdict(self.choice)
        if self.previous is None:
            return f"Vote recorded: {verdict}. To change it, choose another answer."
        if self.previous == self.choice:
            return (
                f"You already voted: {verdict}. One vote per pair of answers counts; "
                "to change it, choose another answer."
            )
        return (
            f"Vote changed: now {verdict}, no longer {self._verdict(self.previous)}. "
            "One vote per pair of answers counts."
        )


def cast_vote(user, generation: Generation, model_a: str, model_b: str, choice: str) -> CastVote:
    """Record the user's verdict on two panes (`generations.record_vote`: it
    checks them and raises InvalidRequest or Http404), and say what it did."""
    low, high = sorted((model_a, model_b))
    earlier = Vote.objects.filter(generation=generation, model_a=low, model_b=high).first()
    generations.record_vote(user, generation, model_a, model_b, choice)
    labels = _labels(generation)
    return CastVote(
        model_a=model_a,
        model_b=model_b,
        label_a=labels.get(model_a, model_a),
        label_b=labels.get(model_b, model_b),
        choice=choice,
        previous=_as_shown(earlier.winner, earlier.model_a, model_a) if earlier else None,
    )


@dataclass
class PairTally:
    """One pair's votes, the model of the left pane first."""

    left: str
    right: str
    left_label: str
    right_label: str
    left_wins: int = 0
    ties: int = 0
    right_wins: int = 0

    @property
    def total(self) -> int:
        return self.left_wins + self.ties + self.right_wins

    @property
    def left_share(self) -> int:
        return round(100 * self.left_wins / self.total) if self.total else 0

    @property
    def tie_share(self) -> int:
        return round(100 * self.ties / self.total) if self.total else 0

    @property
    def right_share(self) -> int:
        return 100 - self.left_share - self.tie_share if self.total else 0


def tallies_as_seen(user) -> list[PairTally]:
    """The user's votes counted per pair of models, most voted first; each
    pair the way round its latest comparison showed it (pane order)."""
    tallies: dict[tuple[str, str], PairTally] = {}
    votes = (
        Vote.objects.filter(owner=user)
        .order_by("-created_at", "-pk")
        .values_list("model_a", "model_b", "winner", "generation__panes")
    )
    for model_a, model_b, winner, panes in votes:
        tally = tallies.get((model_a, model_b))
        if tally is None:
            # The latest vote on the pair: its panes say which model was on the left.
            order = [pane["model"] for pane in panes]
            labels = {pane["model"]: pane.get("label") or pane["model"] for pane in panes}
            left, right = sorted((model_a, model_b), key=order.index)
            tally = tallies[(model_a, model_b)] = PairTally(
                left, right, labels[left], labels[right]
            )
        shown = _as_shown(winner, model_a, tally.left)
        if shown == VoteChoice.A:
            tally.left_wins += 1
        elif shown == VoteChoice.B:
            tally.right_wins += 1
        else:
            tally.ties += 1
    return sorted(tallies.values(), key=lambda t: (-t.total, t.left_label, t.right_label))
