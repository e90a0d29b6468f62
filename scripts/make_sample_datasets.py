"""Generate Tailor's bundled sample datasets into datasets_app/samples/.

Usage (from the repo root):

    .venv/bin/python scripts/make_sample_datasets.py            # rewrite the checked-in files
    .venv/bin/python scripts/make_sample_datasets.py --out DIR  # write elsewhere (tests)

The output is a pure function of the code below and SEED: re-running writes
byte-identical files, and tests/datasets_app/test_samples.py checks that the
checked-in files are exactly what this script produces. Standard library
only: no Django, no torch.

Two samples:

* ``sentiment/`` — product and service reviews written for Tailor (not
  scraped), ``text,label`` CSV with labels ``positive`` / ``negative``. Each
  review is composed from hand-written fragments across fourteen domains, with
  negation ("not bad at all"), mixed-then-resolved opinions ("I wanted to
  love it, but..."), lengths from one word to several sentences, and some
  typos and casing noise. Train and validation come from one pool of unique
  reviews, so no validation text (compared case- and punctuation-
  insensitively) also appears in train. Suits ``minilm-l6``.
* ``support-routing/`` — chat rows (OpenAI ``messages``): a short customer
  message, answered with the team that should handle it (``billing``,
  ``shipping``, ``technical`` or ``account``). Suits ``tailor-tiny``, whose
  weights are random: it cannot know anything it was not shown, so
  validation holds out *combinations*, not knowledge: every validation
  message pairs a problem with a thing that train never pairs it with, in
  new messages. See datasets_app/samples/README.md for why this replaced
  the colour-name-to-hex task.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
from pathlib import Path

from sample_texts import (  # the hand-written fragments: data, not code
    CLOSERS,
    CONTRAST,
    DOMAINS,
    GREETINGS,
    LINKS,
    NEGATED,
    OPENERS,
    ROUTING,
    SHORT,
    SIGN_OFFS,
)

SEED = 20261123
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "datasets_app" / "samples"

SENTIMENT_TRAIN_ROWS = 1200
SENTIMENT_VALIDATION_ROWS = 200
ROUTING_TRAIN_ROWS = 1200
ROUTING_VALIDATION_ROWS = 100

# --------------------------------------------------------------------------
# Sentiment
# --------------------------------------------------------------------------

TYPO_WORD = re.compile(r"[A-Za-z]{5,}")


def _options(templates: str, kind: str) -> list[str]:
    """The "|"-separated templates that suit a domain of this kind."""
    chosen = []
    for template in templates.split("|"):
        if template.startswith("["):
            kinds, template = template[1:].split("]", 1)
            if kind not in kinds.split(","):
                continue
        chosen.append(template)
    return chosen


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _fill(template: str, item: str, **parts: str) -> str:
    values = {"item": item, "Item": _cap(item)}
    for key, value in parts.items():
        values[key] = value
        values[_cap(key)] = _cap(value)
    return template.format(**values)


def _aspect(rng: random.Random, domain: dict, label: str, exclude: int | None = None) -> tuple:
    """(index, clause): a good or bad clause about one aspect of the domain."""
    index = rng.choice([i for i in range(len(domain["aspects"])) if i != exclude])
    good, bad = domain["aspects"][index]
    return index, rng.choice((good if label == "positive" else bad).split("|"))


def _opposite(label: str) -> str:
    return "negative" if label == "positive" else "positive"


def _compose(rng: random.Random, label: str) -> str:
    """One review of the given polarity, in a randomly chosen shape."""
    domain = DOMAINS[rng.choice(sorted(DOMAINS))]
    kind = domain["kind"]
    item = rng.choice(domain["items"].split("|"))

    def pick(templates: dict[str, str], polarity: str = label) -> str:
        return _fill(rng.choice(_options(templates[polarity], kind)), item)

    shape = rng.choices(
        ["short", "aspects", "negated", "contrast", "remark"], weights=[12, 30, 20, 28, 10]
    )[0]
    sentences: list[str] = []
    if shape == "short":
        if rng.random() < 0.4:
            sentences.append(pick(OPENERS))
        sentences.append(pick(SHORT))
    elif shape == "aspects":
        if rng.random() < 0.5:
            sentences.append(pick(OPENERS))
        count = min(rng.choice([1, 1, 2, 2, 3]), len(domain["aspects"]))
        for n, index in enumerate(rng.sample(range(len(domain["aspects"])), k=count)):
            good, bad = domain["aspects"][index]
            clause = rng.choice((good if label == "positive" else bad).split("|"))
            link = rng.choice(LINKS) if n and rng.random() < 0.3 else ""
            sentences.append(_cap(link + clause) + ".")
        if rng.random() < 0.5:
            sentences.append(pick(CLOSERS))
    elif shape == "negated":
        sentences.append(pick(NEGATED))
        if rng.random() < 0.6:
            sentences.append(_cap(_aspect(rng, domain, label)[1]) + ".")
        if rng.random() < 0.3:
            sentences.append(pick(CLOSERS))
    elif shape == "contrast":
        index, main = _aspect(rng, domain, label)
        _, other = _aspect(rng, domain, _opposite(label), exclude=index)
        template = rng.choice(_options(CONTRAST[label], kind))
        sentences.append(_fill(template, item, main=main, other=other))
        if rng.random() < 0.35:
            sentences.append(pick(CLOSERS))
    else:  # a remark about the domain, maybe with an aspect
        if rng.random() < 0.5:
            sentences.append(pick(OPENERS))
        sentences.append(rng.choice(domain["pos" if label == "positive" else "neg"].split("|")))
        if rng.random() < 0.5:
            sentences.append(_cap(_aspect(rng, domain, label)[1]) + ".")
    return _noise(rng, " ".join(sentences))


def _typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(1, len(word) - 2)
    kind = rng.choice(["swap", "drop", "double"])
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _noise(rng: random.Random, text: str) -> str:
    """Typos, casing slips and punctuation habits of real reviewers."""
    if rng.random() < 0.12:
        words = list(TYPO_WORD.finditer(text))
        picked = rng.sample(words, k=min(len(words), rng.choice([1, 1, 2])))
        for match in sorted(picked, key=lambda m: m.start(), reverse=True):
            start, end = match.span()
            text = text[:start] + _typo(rng, match.group()) + text[end:]
    roll = rng.random()
    if roll < 0.12:
        text = text.lower()
    elif roll < 0.15:
        text = text.upper()
    if rng.random() < 0.08:
        text = text.replace("'", "")
    roll = rng.random()
    if roll < 0.06:
        text = text.rstrip(".!") + rng.choice(["!!", "!!!", "..."])
    elif roll < 0.1:
        text = text.rstrip(".")
    return text


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def make_sentiment(seed: int = SEED) -> tuple[list[dict], list[dict]]:
    """Balanced, unique reviews: (train, validation)."""
    rng = random.Random(f"{seed}-sentiment")
    total = SENTIMENT_TRAIN_ROWS + SENTIMENT_VALIDATION_ROWS
    seen: set[str] = set()
    rows: dict[str, list[dict]] = {"positive": [], "negative": []}
    for label in ("positive", "negative"):
        while len(rows[label]) < total // 2:
            text = _compose(rng, label)
            key = _normalise(text)
            if key in seen:
                continue
            seen.add(key)
            rows[label].append({"text": text, "label": label})
    half = SENTIMENT_VALIDATION_ROWS // 2
    validation = rows["positive"][:half] + rows["negative"][:half]
    train = rows["positive"][half:] + rows["negative"][half:]
    rng.shuffle(train)
    rng.shuffle(validation)
    return train, validation


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["text", "label"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# --------------------------------------------------------------------------
# Support ticket routing
# --------------------------------------------------------------------------

TEAMS = ("billing", "shipping", "technical", "account")

QUESTION_WORDS = {"can", "how", "why", "when", "where", "has", "do"}
ROUTING_SYSTEM = "Reply with the team: billing, shipping, technical or account."


def _ticket(rng: random.Random, team: str, problem: str, thing: str) -> dict:
    """One short customer message (tailor-tiny's tokens are short: keep rows brief)."""
    core = problem.format(x=thing)
    greeting = rng.choice(GREETINGS) if rng.random() < 0.12 else ""
    sign_off = rng.choice(SIGN_OFFS) if rng.random() < 0.1 else ""
    if greeting.endswith("! "):
        core = _cap(core)
    if core.split()[0].lower() in QUESTION_WORDS:
        end = "?"
    else:
        end = rng.choice([".", "."] if sign_off else [".", "!", ""])
    text = _cap(greeting + core + end + sign_off)
    roll = rng.random()
    if roll < 0.12:
        text = text.lower()
    elif roll < 0.18:
        words = list(TYPO_WORD.finditer(text))
        if words:
            match = rng.choice(words)
            text = text[: match.start()] + _typo(rng, match.group()) + text[match.end() :]
    system = ROUTING_SYSTEM if rng.random() < 0.05 else None
    return _chat(system, text, team)


def make_routing(seed: int = SEED) -> tuple[list[dict], list[dict]]:
    """Balanced, unique tickets: (train, validation).

    Every validation message pairs a problem with a thing that train never
    pairs it with: new messages, made of problems and things train has seen.
    """
    rng = random.Random(f"{seed}-support-routing")
    train, validation = [], []
    seen: set[str] = set()
    for team in TEAMS:
        pairs = [
            (problem, thing)
            for problem in ROUTING[team]["problems"].split("|")
            for thing in ROUTING[team]["things"].split("|")
        ]
        rng.shuffle(pairs)
        # The first fifth of the pairs never reaches train; validation uses some.
        held_out, pool = pairs[: len(pairs) // 5], pairs[len(pairs) // 5 :]
        for problem, thing in held_out[: ROUTING_VALIDATION_ROWS // len(TEAMS)]:
            row = _ticket(rng, team, problem, thing)
            seen.add(_normalise(row["messages"][-2]["content"]))
            validation.append(row)
        count = 0
        while count < ROUTING_TRAIN_ROWS // len(TEAMS):
            row = _ticket(rng, team, *rng.choice(pool))
            key = _normalise(row["messages"][-2]["content"])
            if key not in seen:
                seen.add(key)
                train.append(row)
                count += 1
    rng.shuffle(train)
    rng.shuffle(validation)
    return train, validation


def _chat(system: str | None, user: str, answer: str) -> dict:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


# --------------------------------------------------------------------------
# Support reply preferences (DPO)
# --------------------------------------------------------------------------

PREFERENCE_TRAIN_ROWS = 800
PREFERENCE_VALIDATION_ROWS = 100
# A reply names the team that takes the ticket. Chosen and rejected use the
# same reply with a different team, so the only thing to learn is which team
# the message needs, and an untrained model, which cannot read the message,
# prefers either about as often (each wrong team is as often the chosen one).
REPLIES = (
    "The {team} team will sort this out.",
    "I have passed this to our {team} team.",
    "Our {team} team can help with this.",
    "Thanks! {Team} will get back to you today.",
)


def _preference(rng: random.Random, ticket: dict, team: str) -> dict:
    wrong = rng.choice([other for other in TEAMS if other != team])
    reply = rng.choice(REPLIES)
    prompt = ticket["messages"][:-1]
    return {
        "prompt": prompt,
        "chosen": reply.format(team=team, Team=_cap(team)),
        "rejected": reply.format(team=wrong, Team=_cap(wrong)),
    }


def make_preferences(seed: int = SEED) -> tuple[list[dict], list[dict]]:
    """Balanced, unique preference pairs on support tickets: (train, validation).

    The tickets are built as support-routing's are, with the same held-out
    rule: validation messages pair a problem with a thing train never pairs
    it with.
    """
    rng = random.Random(f"{seed}-support-preferences")
    train, validation = [], []
    seen: set[str] = set()
    for team in TEAMS:
        pairs = [
            (problem, thing)
            for problem in ROUTING[team]["problems"].split("|")
            for thing in ROUTING[team]["things"].split("|")
        ]
        rng.shuffle(pairs)
        held_out, pool = pairs[: len(pairs) // 5], pairs[len(pairs) // 5 :]
        for problem, thing in held_out[: PREFERENCE_VALIDATION_ROWS // len(TEAMS)]:
            ticket = _ticket(rng, team, problem, thing)
            seen.add(_normalise(ticket["messages"][-2]["content"]))
            validation.append(_preference(rng, ticket, team))
        count = 0
        while count < PREFERENCE_TRAIN_ROWS // len(TEAMS):
            ticket = _ticket(rng, team, *rng.choice(pool))
            key = _normalise(ticket["messages"][-2]["content"])
            if key not in seen:
                seen.add(key)
                train.append(_preference(rng, ticket, team))
                count += 1
    rng.shuffle(train)
    rng.shuffle(validation)
    return train, validation


# --------------------------------------------------------------------------


def build(seed: int = SEED) -> dict[str, str]:
    """Relative path -> file contents for every generated file."""
    sentiment_train, sentiment_validation = make_sentiment(seed)
    routing_train, routing_validation = make_routing(seed)
    preference_train, preference_validation = make_preferences(seed)
    return {
        "sentiment/train.csv": _csv(sentiment_train),
        "sentiment/validation.csv": _csv(sentiment_validation),
        "support-routing/train.jsonl": _jsonl(routing_train),
        "support-routing/validation.jsonl": _jsonl(routing_validation),
        "support-preferences/train.jsonl": _jsonl(preference_train),
        "support-preferences/validation.jsonl": _jsonl(preference_validation),
    }


def write(out: Path, seed: int = SEED) -> list[Path]:
    written = []
    for relative, content in build(seed).items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8"))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="target folder")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    for path in write(args.out, args.seed):
        print(path)


if __name__ == "__main__":
    main()
