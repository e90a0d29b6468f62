"""Asking the inference worker for answers: checking a request, recording it,
sending it, cancelling it; votes on the answers.

The playground (websocket), the native API and the OpenAI-compatible API all
go through `check_request` and `create_generation`; the worker streams what
it generates to `generation_group(id)` (see serving/worker.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404
from django.utils import timezone

from audit.models import Action
from audit.services import record
from jobs.models import ModelTask
from jobs.numbers import NumberError, read_number
from jobs.services.lifecycle import flags_client
from quotas.services import check_generation
from serving.errors import sentence
from serving.models import Generation, GenerationSource, GenerationStatus, Vote, VoteChoice
from serving.services.names import ServedModel, resolve_model
from studio.events import publish
from studio.services import leases
from studio.services.access import one_or_404

logger = logging.getLogger(__name__)

MAX_PANES = 4
MAX_FINE_TUNED = 3
MAX_PROMPT_CHARACTERS = 32_000
MAX_STOP_SEQUENCES = 4
# How many of a user's playground prompts the page offers again.
RECENT_PROMPTS = 10
BROKER_DOWN = sentence("broker_down")


class InvalidRequest(Exception):
    """Field-level problems: {field: plain sentence}. The first is the headline."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        self.field, self.message = next(iter(errors.items()))
        super().__init__(self.message)


@dataclass
class GenerationRequest:
    """A request as the edges read it; `check_request` turns it into a plan."""

    models: list[str]
    # A chat (None: a raw prompt or a text to classify, in `text`).
    messages: list[dict] | None = None
    text: str = ""
    params: dict = field(default_factory=dict)


@dataclass
class CheckedRequest:
    served: list[ServedModel]
    task: str
    messages: list[dict]
    text: str
    params: dict


# --- parameters -----------------------------------------------------------------------


def _number(value, name: str, errors: dict, **bounds):
    """`value` read as `read_number` reads it; None after recording its sentence under `name`."""
    try:
        return read_number(value, **bounds)
    except NumberError as refused:
        errors[name] = refused.message
        return None


def read_params(data: dict, *, names: dict[str, str] | None = None) -> dict:
    """Generation parameters from a request, checked; InvalidRequest names the field.

    `names` maps our names to the caller's (the OpenAI API says `max_tokens`).
    Missing values take their defaults: 128 new tokens, temperature 0.7,
    top-p 1, no seed, no stop sequences.
    """
    names = names or {}
    errors: dict[str, str] = {}
    limit = settings.TAILOR_MAX_NEW_TOKENS

    def get(key, default):
        value = data.get(names.get(key, key))
        return default if value is None or value == "" else value

    def label(key):
        return names.get(key, key)

    params = {
        "max_new_tokens": _number(get("max_new_tokens", min(128, limit)), label("max_new_tokens"),
                                  errors, whole=True, lowest=1, highest=limit),
        "temperature": _number(get("temperature", 0.7), label("temperature"), errors, whole=False,
                               lowest=0, highest=2),
        "top_p": _number(get("top_p", 1.0), label("top_p"), errors, whole=False, lowest=0,
                         highest=1, lowest_open=True),
        "seed": None,
        "stop": [],
    }  # fmt: skip
    seed = get("seed", None)
    if seed is not None:
        params["seed"] = _number(
            seed, label("seed"), errors, whole=True, lowest=0, highest=2**32 - 1
        )
    stop = get("stop", None)
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if (
            not isinstance(stops, list)
            or not all(isinstance(s, str) and s for s in stops)
            or len(stops) > MAX_STOP_SEQUENCES
        ):
            errors[label("stop")] = (
                f"must be a non-empty string or a list of at most {MAX_STOP_SEQUENCES} of them."
            )
        else:
            params["stop"] = stops
    if errors:
        raise InvalidRequest({f: m if m[0].isupper() else f"{f}: {m}" for f, m in errors.items()})
    return params


# --- requests -------------------------------------------------------------------------


def _check_messages(messages, errors: dict) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        errors["messages"] = "messages: must be a non-empty list of {role, content} objects."
        return []
    checked = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            errors[where] = f"{where}: must be an object with a role and a content."
            return []
        role, content = message.get("role"), message.get("content")
        if role not in ("system", "user", "assistant"):
            errors[f"{where}.role"] = f"{where}.role: must be one of system, user, assistant."
            return []
        if isinstance(content, list):
            # OpenAI's content parts: only text parts can be answered here.
            parts = [p for p in content if isinstance(p, dict)]
            if len(parts) != len(content) or any(p.get("type") != "text" for p in parts):
                errors[f"{where}.content"] = f"{where}.content: only text parts are supported."
                return []
            content = "".join(str(p.get("text", "")) for p in parts)
        if not isinstance(content, str):
            errors[f"{where}.content"] = f"{where}.content: must be a string."
            return []
        checked.append({"role": role, "content": content})
    if checked[-1]["role"] == "assistant":
        errors["messages"] = "messages: the last message must be from the user (or the system)."
    if not any(m["content"].strip() for m in checked if m["role"] == "user"):
        errors["messages"] = "messages: write a user message."
    if sum(len(m["content"]) for m in checked) > MAX_PROMPT_CHARACTERS:
        errors["messages"] = f"messages: at most {MAX_PROMPT_CHARACTERS:,} characters in all."
    return checked


def _text_to_classify(request: GenerationRequest, errors: dict) -> str:
    """The text, or else the last user message (a chat client asking a classifier)."""
    text = request.text if isinstance(request.text, str) else ""
    if not text.strip() and request.messages is not None:
        messages = _check_messages(request.messages, errors)
        users = [m["content"] for m in messages if m["role"] == "user"]
        text = users[-1] if users else ""
        if errors:
            return text
    if not text.strip():
        errors["text"] = "Write a text to classify."
    elif len(text) > MAX_PROMPT_CHARACTERS:
        errors["text"] = f"The text may have at most {MAX_PROMPT_CHARACTERS:,} characters."
    return text


def _resolve_panes(user, models) -> list[ServedModel]:
    if not isinstance(models, list) or not all(isinstance(n, str) for n in models):
        raise InvalidRequest({"models": "Name each model as a string."})
    names = [n.strip() for n in models]
    if not names:
        raise InvalidRequest({"models": "Pick at least one model."})
    if len(names) > MAX_PANES:
        raise InvalidRequest({"models": f"Compare at most {MAX_PANES} models at once."})
    if len(set(names)) != len(names):
        raise InvalidRequest({"models": "Each model may appear once."})
    served = [resolve_model(user, name) for name in names]
    if len({s.base.pk for s in served}) > 1:
        raise InvalidRequest(
            {"models": "Every model compared must share one base model (adapters attach to it)."}
        )
    if sum(not s.is_base for s in served) > MAX_FINE_TUNED:
        raise InvalidRequest({"models": f"Compare at most {MAX_FINE_TUNED} fine-tuned models."})
    return served


def check_request(user, request: GenerationRequest) -> CheckedRequest:
    """Resolve the models and check the prompt and parameters.

    Raises UnknownModel (a name the user may not run) or InvalidRequest.
    Every pane must share one base model, so that one batched generate can
    answer them all; at most one base pane and three fine-tuned ones.
    """
    served = _resolve_panes(user, request.models)
    task = served[0].task
    errors: dict[str, str] = {}
    messages, text = [], ""
    if task == ModelTask.SEQUENCE_CLASSIFICATION:
        if all(s.is_base for s in served):
            raise InvalidRequest(
                {"models": "A base encoder has no labels of its own: add a fine-tuned model."}
            )
        text = _text_to_classify(request, errors)
    elif request.messages is not None:
        messages = _check_messages(request.messages, errors)
    else:
        text = request.text if isinstance(request.text, str) else ""
        if not text:
            errors["prompt"] = "Write a prompt."
        elif len(text) > MAX_PROMPT_CHARACTERS:
            errors["prompt"] = f"The prompt may have at most {MAX_PROMPT_CHARACTERS:,} characters."
    try:
        params = read_params(request.params)
    except InvalidRequest as exc:
        errors.update(exc.errors)
        params = {}
    if errors:
        raise InvalidRequest(errors)
    return CheckedRequest(served=served, task=task, messages=messages, text=text, params=params)


def create_generation(user, checked: CheckedRequest, *, source: str) -> Generation:
    """Record the request (status queued). The caller joins the generation's
    group and then calls `dispatch`, so no streamed token can be missed.
    QuotaExceeded (quotas/) when the user was served their day's tokens."""
    check_generation(user)
    with transaction.atomic():
        generation = _store_generation(user, checked, source=source)
        names = " vs ".join(pane["model"] for pane in generation.panes)
        record(Action.CREATE, generation, owner=user, target_name=names)
    return generation


def _store_generation(user, checked: CheckedRequest, *, source: str) -> Generation:
    return Generation.objects.create(
        owner=user,
        source=source,
        base_model=checked.served[0].base,
        task=checked.task,
        panes=[
            {"model": s.name, "label": s.label, "job": str(s.job.pk) if s.job else None}
            for s in checked.served
        ],
        messages=checked.messages,
        text=checked.text,
        params=checked.params,
    )


def dispatch(generation_id) -> bool:
    """Send the request to the inference queue. It expires when no worker has
    taken it within the start timeout: the asker has given up by then.

    When the broker cannot take it the request fails at once, and its group
    is told (the asker has joined it): nobody waits for a message never sent."""
    if leases.send(leases.kind("generation"), generation_id):
        return True
    failed = Generation.objects.filter(pk=generation_id, status=GenerationStatus.QUEUED).update(
        status=GenerationStatus.FAILED, finished_at=timezone.now(), error=BROKER_DOWN
    )
    if failed:
        publish(
            generation_group(generation_id),
            {"type": "generation.done", "seq": 1, "id": str(generation_id),
             "status": GenerationStatus.FAILED, "error": BROKER_DOWN, "results": []},
        )  # fmt: skip
    return False


def generation_group(generation_id) -> str:
    return f"generation-{generation_id}"


def cancel_flag_key(generation_id) -> str:
    return f"tailor:cancel-generation:{generation_id}"


def request_cancel(generation_id) -> None:
    """Ask the worker to stop generating (the asker went away or pressed Stop)."""
    try:
        flags_client().set(cancel_flag_key(generation_id), "1", ex=3600)
    except Exception as exc:  # Redis away: the worker finishes the answer, nobody reads it
        logger.warning("Could not ask generation %s to stop: %s", generation_id, exc)


def cancel_generation(generation: Generation) -> Generation:
    """Stop a queued or running generation (the caller checked it is one): a
    queued one is cancelled at once, a running one stops at its worker's next
    token, which reads the flag."""
    request_cancel(generation.pk)
    with transaction.atomic():
        Generation.objects.filter(pk=generation.pk, status=GenerationStatus.QUEUED).update(
            status=GenerationStatus.CANCELLED, finished_at=timezone.now()
        )
        record(Action.CANCEL, generation)
    generation.refresh_from_db()
    return generation


def give_up_unstarted(generation_id) -> bool:
    """Fail a request no worker took in time; True when it was still queued."""
    return bool(
        Generation.objects.filter(pk=generation_id, status=GenerationStatus.QUEUED).update(
            status=GenerationStatus.FAILED,
            finished_at=timezone.now(),
            error=no_worker_message(),
        )
    )


def no_worker_message() -> str:
    return sentence("no_worker", seconds=settings.TAILOR_GENERATION_START_TIMEOUT_SECONDS)


# What only operators are shown of a finished generation: the exception
# behind its error, and behind each pane's.
STAFF_ONLY = "error_detail"


def done_as_seen_by(user, message: dict) -> dict:
    """A `generation.done` message (or a stored generation's results) as `user`
    may read it: staff see everything; anyone else not the `error_detail`s,
    whose text may name a server path or a Python class."""
    if user.is_staff:
        return message
    shown = {key: value for key, value in message.items() if key != STAFF_ONLY}
    shown["results"] = results_as_seen_by(user, message.get("results") or [])
    return shown


def results_as_seen_by(user, results: list[dict]) -> list[dict]:
    """Pane results as `user` may read them (see `done_as_seen_by`)."""
    if user.is_staff:
        return results
    return [{k: v for k, v in result.items() if k != STAFF_ONLY} for result in results]


def access_generation(user, generation_id) -> Generation:
    """The user's generation (staff: anyone's); the same 404 for missing and foreign."""
    return one_or_404(Generation.objects.for_user(user), generation_id, "No such generation.")


def recent_prompts(user) -> list[Generation]:
    return list(
        Generation.objects.filter(owner=user, source=GenerationSource.PLAYGROUND)
        .select_related("base_model")
        .order_by("-created_at")[:RECENT_PROMPTS]
    )


# --- votes ----------------------------------------------------------------------------


def record_vote(user, generation: Generation, model_a: str, model_b: str, choice: str) -> Vote:
    """Store (or change) the user's verdict on two panes of one generation.

    `choice` is "a", "b" or "tie" as shown (A = model_a). The pair is stored in
    name order so that tallies group it whichever way round it was shown.
    """
    if generation.owner_id != user.pk:
        raise Http404("No such generation.")
    if generation.status != GenerationStatus.SUCCEEDED:
        raise InvalidRequest({"choice": "Vote once every answer has finished."})
    shown = generation.model_names
    if model_a not in shown or model_b not in shown or model_a == model_b:
        raise InvalidRequest({"models": "Vote on two different models of this comparison."})
    if choice not in VoteChoice.values:
        raise InvalidRequest({"choice": "Choose A, B or tie."})
    if model_a > model_b:
        model_a, model_b = model_b, model_a
        choice = {"a": "b", "b": "a"}.get(choice, choice)
    with transaction.atomic():
        vote, _ = Vote.objects.update_or_create(
            generation=generation,
            model_a=model_a,
            model_b=model_b,
            defaults={"owner": user, "winner": choice, "created_at": timezone.now()},
        )
        record(Action.VOTE, generation, owner=user,
               detail={"model_a": model_a, "model_b": model_b, "winner": choice})  # fmt: skip
    return vote


@dataclass
class PairTally:
    model_a: str
    model_b: str
    a_wins: int
    b_wins: int
    ties: int

    @property
    def total(self) -> int:
        return self.a_wins + self.b_wins + self.ties

    @property
    def a_share(self) -> int:
        return round(100 * self.a_wins / self.total) if self.total else 0

    @property
    def tie_share(self) -> int:
        return round(100 * self.ties / self.total) if self.total else 0

    @property
    def b_share(self) -> int:
        return 100 - self.a_share - self.tie_share if self.total else 0


def vote_tallies(user) -> list[PairTally]:
    """The user's votes counted per pair of models, most voted first."""
    rows = (
        Vote.objects.filter(owner=user)
        .values("model_a", "model_b")
        .annotate(
            a_wins=Count("id", filter=Q(winner="a")),
            b_wins=Count("id", filter=Q(winner="b")),
            ties=Count("id", filter=Q(winner="tie")),
        )
    )
    tallies = [PairTally(**row) for row in rows]
    return sorted(tallies, key=lambda t: (-t.total, t.model_a, t.model_b))
