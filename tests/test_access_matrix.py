"""Who may reach what: every route of the studio, classified, and tried as a
visitor, the owner, another user and staff (issue 13).

The routes are read from the URLconf (the root resolver, walked down: the
pages, the admin, the REST API's router, the OpenAI-compatible /v1/) and
from the websocket router. Each must have a row in ROUTES or WEBSOCKETS that
says whom it is for (its `Kind`) and what its owner gets for each method;
`test_every_route_is_classified` fails on any route without one, so a new
route forces a decision. The expected answer of every other role follows
from the kind: a visitor is sent to log in (pages) or gets 401 (APIs);
another user gets the 404 of an object that does not exist, never the object,
a 403 that says it exists, or a 500; staff see and act on everyone's objects
(tokens excepted) and alone enter the admin.

URL parameters name real objects of the owner, built once for the module
through the services (a validated sample dataset, a job marked succeeded with
its files where the ledger puts them, an evaluation, a generation, tokens).
Each case runs in a transaction that is rolled back, and no worker runs:
what a request queues is never sent (on_commit never fires).

Then: session requests without a CSRF token are refused on every unsafe
route, and every websocket route refuses a page from another origin.
"""

import contextlib
import dataclasses
import json
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import SimpleNamespace

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.admin.sites import site as admin_site
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Max
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry, Door
from datasets_app.models import Dataset
from jobs.models import Checkpoint, FineTuneJob, JobStatus, MetricPoint, Sweep
from jobs.services.artifacts import ADAPTER_ZIP
from jobs.services.lifecycle import check_start_job, create_job
from quotas.models import QuotaOverride
from serving.models import Evaluation, Generation, GenerationSource, GenerationStatus, Vote
from serving.services import generations
from serving.services.generations import GenerationRequest
from studio.asgi import application
from studio.models import ApiToken
from studio.routing import websocket_urlpatterns
from studio.services.tokens import create_token
from tests.builders import ready_sample
from tests.live import run_in_own_loop
from tests.processes import PASSWORD
from usage.models import DevicePrice, DeviceUse

pytestmark = pytest.mark.django_db

ANONYMOUS, OWNER, OTHER, STAFF = "anonymous", "owner", "other", "staff"
ROLES = (ANONYMOUS, OWNER, OTHER, STAFF)
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


# --- the classification --------------------------------------------------------------------


class Kind(StrEnum):
    """Whom a route is for; each role's answer follows from it (see `expected`)."""

    PUBLIC = "public: the same answer for everyone"
    SIGNED_IN = "login required: the user's own things only"
    OWNED = "login required, owner-scoped (staff: everyone's)"
    OWN_ONLY = "login required, the user's own only (staff too)"
    API = "token API: the user's own things only"
    OWNED_API = "token API, owner-scoped (staff: everyone's)"
    OWN_ONLY_API = "token API, the user's own only (staff too)"
    OPENAI = "OpenAI-compatible token API"
    OWNED_OPENAI = "OpenAI-compatible token API, owner-scoped (staff: everyone's)"
    ADMIN = "staff only: the admin"


@dataclass(frozen=True)
class SentTo:
    """A 302 to a URL that starts with `prefix`."""

    prefix: str


LOG_IN = SentTo("/login/?next=")
ADMIN_LOG_IN = SentTo("/admin/login/?next=")
NOT_FOUND = "404, as for an object that does not exist"


@dataclass(frozen=True)
class Call:
    """One request to a route, and what its owner (for the admin: staff) gets.

    `expect` is a status, a set of them, SentTo or NOT_FOUND. `body` is a
    dict, or a function of the World for ids; `others` overrides the answer
    `Kind` gives a role (a role to any of those, or (status, field) for an
    API error that names the field at fault)."""

    method: str = "GET"
    expect: int | frozenset | SentTo | str = 200
    body: dict | Callable | None = None
    # A string, or a function of the World for a query that names ids.
    query: str | Callable = ""
    others: dict = field(default_factory=dict)
    # The API error's field, for a 400 whose field says whose check refused it.
    error_field: str | None = None


def expected(kind: Kind, role: str, call: Call):
    """What `role` gets from `call` to a route of `kind`."""
    if role in call.others:
        return call.others[role]
    if kind == Kind.ADMIN:
        return call.expect if role == STAFF else ADMIN_LOG_IN
    refused = {
        ANONYMOUS: None if kind == Kind.PUBLIC else LOG_IN if kind in PAGES else 401,
        OTHER: NOT_FOUND if kind in OWNER_SCOPED else None,
        STAFF: NOT_FOUND if kind in (Kind.OWN_ONLY, Kind.OWN_ONLY_API) else None,
    }.get(role)
    return refused or call.expect


OWNER_SCOPED = {
    Kind.OWNED, Kind.OWN_ONLY, Kind.OWNED_API, Kind.OWN_ONLY_API, Kind.OWNED_OPENAI,
}  # fmt: skip
PAGES = {Kind.PUBLIC, Kind.SIGNED_IN, Kind.OWNED, Kind.OWN_ONLY, Kind.ADMIN}
TOKEN_APIS = {Kind.API, Kind.OWNED_API, Kind.OWN_ONLY_API}
OPENAI_APIS = {Kind.OPENAI, Kind.OWNED_OPENAI}


@dataclass(frozen=True)
class Row:
    kind: Kind
    calls: tuple[Call, ...]


def row(kind: Kind, *calls: Call) -> Row:
    return Row(kind, calls or (Call(),))


def wizard_body(world) -> dict:
    """The new-job wizard's form for the owner's dataset (the owner's job to create)."""
    return {"data.dataset": str(world.dataset.pk), "model.base_model": "tailor-tiny",
            "model.method": "lora", "preset": "quick"}  # fmt: skip


def job_body(world) -> dict:
    return {"dataset": str(world.dataset.pk), "base_model": "tailor-tiny", "method": "lora",
            "start": False}  # fmt: skip


def sweep_body(world) -> dict:
    # Refused by the sweep's own check (no parameter): nothing is created.
    return {**job_body(world), "sweep": {"parameters": {}, "budget": 2}}


def merge_body(world) -> dict:
    # The owner's two succeeded jobs: the owner's merge becomes a job; anyone
    # else (staff too: a merge is of one's own adapters) names no job of theirs.
    return {"sources": [str(world.job.pk), str(world.sibling.pk)]}


def compared_jobs(world) -> str:
    """The Compare query of the owner's two jobs."""
    return f"?ids={world.job.pk},{world.sibling.pk}"


def generation_body(world) -> dict:
    # Valid in shape, refused by check_request after the models are resolved
    # (a temperature out of range): the owner's 400 names the temperature,
    # another user's the model, and nothing is queued either way.
    return {"models": [world.model_name], "messages": [{"role": "user", "content": "hi"}],
            "temperature": 99}  # fmt: skip


def chat_body(world) -> dict:
    # The model is resolved first; the conversation (an assistant first) is then refused.
    return {"model": world.model_name, "messages": [{"role": "assistant", "content": "hi"}]}


def completion_body(world) -> dict:
    return {"model": world.model_name, "prompt": "x" * (generations.MAX_PROMPT_CHARACTERS + 1)}


def vote_body(world) -> dict:
    return {"model_a": "tailor-tiny", "model_b": world.model_name, "choice": "b"}


def api_vote_body(world) -> dict:
    return {"model_a": "tailor-tiny", "model_b": world.model_name, "winner": "b"}


def evaluation_body(world) -> dict:
    return {"job": str(world.job.pk), "sample_size": 5}


def fine_tuning_body(world) -> dict:
    return {"training_file": world.file_id, "model": "tailor-tiny"}


GET = Call()
# Every row: the route's URL name (its pattern when it has none) -> whom it is
# for, and what its owner gets for each method it answers.
ROUTES: dict[str, Row] = {
    # --- the studio shell --------------------------------------------------------------
    "dashboard": row(Kind.SIGNED_IN),
    # The status panel is the operators': an analyst's home page has none.
    "system-status": row(Kind.SIGNED_IN, Call(expect=403, others={STAFF: 200})),
    # The operations page and its data: staff only, a 404 for anyone else.
    "ops": row(Kind.SIGNED_IN, Call(expect=NOT_FOUND, others={STAFF: 200})),
    # Prometheus: staff, a staff token or TAILOR_METRICS_TOKEN; 401 without credentials.
    "metrics": row(Kind.SIGNED_IN, Call(expect=403, others={ANONYMOUS: 401, STAFF: 200})),
    # 503 while a worker or the reaper is down, as here unless a session started them.
    "healthz": row(Kind.PUBLIC, Call(expect=frozenset({200, 503}))),
    "tokens": row(Kind.SIGNED_IN, GET, Call("POST", body={"name": "matrix"})),
    "token-revoke": row(Kind.OWN_ONLY, Call("POST", SentTo("/tokens/"))),
    "login": row(
        Kind.PUBLIC,
        Call(others={OWNER: 302, OTHER: 302, STAFF: 302}),
        Call(
            "POST",
            body={"username": "alice", "password": "wrong"},
            others={OWNER: 302, OTHER: 302, STAFF: 302},
        ),
    ),
    "logout": row(Kind.PUBLIC, Call("POST", SentTo("/login/"))),
    "password-change": row(
        Kind.SIGNED_IN,
        GET,
        # A wrong current password: refused, and nothing changes for the next case.
        Call(
            "POST",
            422,
            body={
                "old_password": "wrong",
                "new_password1": "a-new-one-42",
                "new_password2": "a-new-one-42",
            },
        ),
    ),
    # --- datasets -----------------------------------------------------------------------
    "datasets": row(Kind.SIGNED_IN),
    "dataset-upload": row(Kind.SIGNED_IN, Call("POST", 422, body={"name": "no file"})),
    "dataset-sample": row(Kind.SIGNED_IN, Call("POST", SentTo("/datasets/"))),
    "dataset-detail": row(Kind.OWNED),
    "dataset-preview": row(Kind.OWNED, Call(query="?page=2")),
    "dataset-rename": row(Kind.OWNED, Call("POST", SentTo("/datasets/"), body={"name": "renamed"})),
    "dataset-settings": row(
        Kind.OWNED, Call("POST", SentTo("/datasets/"), body={"split_mode": "holdout"})
    ),
    "dataset-delete": row(Kind.OWNED, Call("POST", SentTo("/datasets/"))),
    # The dataset is ready: there is nothing to skip, which the page says.
    "dataset-skip-invalid-rows": row(Kind.OWNED, Call("POST", SentTo("/datasets/"))),
    # --- jobs ---------------------------------------------------------------------------
    "jobs": row(Kind.SIGNED_IN),
    "job-new": row(
        Kind.SIGNED_IN,
        GET,
        # Another user names a dataset that is not theirs: the wizard refuses it.
        Call("POST", SentTo("/jobs/"), body=wizard_body, others={OTHER: 422}),
    ),
    "job-preview": row(Kind.SIGNED_IN, Call("POST", body=wizard_body)),
    "job-upload": row(Kind.SIGNED_IN, Call("POST", 422)),
    "jobs-compare": row(Kind.OWNED, Call(query=compared_jobs)),
    "sweeps": row(Kind.SIGNED_IN),
    # The wizard's Sweep with no parameter to vary: the page says which to fill.
    "sweep-new": row(Kind.SIGNED_IN, Call("POST", 422, body=wizard_body)),
    "sweep-detail": row(Kind.OWNED),
    "sweep-cancel": row(Kind.OWNED, Call("POST", SentTo("/sweeps/"))),
    "job-detail": row(Kind.OWNED),
    "job-row": row(Kind.OWNED),
    "job-cancel": row(Kind.OWNED, Call("POST", SentTo("/jobs/"))),
    "job-retry": row(Kind.OWNED, Call("POST", SentTo("/jobs/"))),
    "job-resume": row(Kind.OWNED, Call("POST", SentTo("/jobs/"))),
    "job-delete": row(Kind.OWNED, Call("POST", SentTo("/jobs/"))),
    "job-export": row(Kind.OWNED, Call("POST", SentTo("/jobs/"))),
    # A job's star, tags and note are its owner's alone: staff get the 404 too.
    "job-star": row(Kind.OWN_ONLY, Call("POST", SentTo("/jobs/"), body={"starred": "true"})),
    "job-organise": row(
        Kind.OWN_ONLY, Call("POST", SentTo("/jobs/"), body={"tags": "matrix", "note": "n"})
    ),
    "job-config": row(Kind.OWNED),
    "job-adapter": row(Kind.OWNED),
    "job-merged": row(Kind.OWNED),
    "job-merge": row(
        Kind.SIGNED_IN,
        GET,
        Call("POST", SentTo("/jobs/"), body=merge_body, others={OTHER: 422, STAFF: 422}),
    ),
    "models": row(Kind.SIGNED_IN),
    # --- serving ------------------------------------------------------------------------
    "playground": row(Kind.SIGNED_IN),
    # Staff see the comparison, but only the one who asked votes on it.
    "playground-vote": row(Kind.OWNED, Call("POST", body=vote_body, others={STAFF: NOT_FOUND})),
    "job-evaluation": row(Kind.OWNED),
    "job-evaluate": row(Kind.OWNED, Call("POST", SentTo("/jobs/"), body={"sample_size": "5"})),
    # --- the REST API -------------------------------------------------------------------
    "api-me": row(Kind.API),
    "api-ops": row(Kind.API, Call(expect=403, others={STAFF: 200})),
    "api-me-password": row(
        Kind.API,
        Call(
            "POST",
            400,
            body={"current_password": "wrong", "new_password": "a-new-one-42"},
            error_field="current_password",
        ),
    ),
    "api-dataset-list": row(Kind.API, GET, Call("POST", 400, body={"name": "no file"})),
    "api-dataset-detail": row(
        Kind.OWNED_API, GET, Call("PATCH", body={"name": "renamed"}), Call("DELETE", 204)
    ),
    "api-dataset-preview": row(Kind.OWNED_API),
    "api-dataset-skip-invalid-rows": row(Kind.OWNED_API, Call("POST", 409)),
    "api-model-list": row(Kind.API),
    "api-model-detail": row(Kind.API),
    "api-job-list": row(Kind.API, GET, Call("POST", 201, body=job_body, others={OTHER: 400})),
    "api-job-estimate": row(Kind.API, Call("POST", body=job_body, others={OTHER: 400})),
    "api-job-compare": row(Kind.OWNED_API, Call(query=compared_jobs)),
    "api-job-merge": row(
        Kind.API,
        Call(
            "POST",
            201,
            body=merge_body,
            others={OTHER: (400, "merge.sources"), STAFF: (400, "merge.sources")},
        ),
    ),
    # The owner's one vote has no answers to use: nothing is made, which the page says.
    "playground-preference-dataset": row(Kind.SIGNED_IN, GET, Call("POST", 422)),
    "api-sweep-list": row(Kind.API, GET, Call("POST", 400, body=sweep_body)),
    "api-sweep-detail": row(Kind.OWNED_API),
    "api-sweep-cancel": row(Kind.OWNED_API, Call("POST")),
    # PATCH: the owner's tags, note and star, which staff do not change either.
    "api-job-detail": row(
        Kind.OWNED_API,
        GET,
        Call("PATCH", body={"tags": ["matrix"], "starred": True}, others={STAFF: NOT_FOUND}),
        Call("DELETE", 204),
    ),
    "api-job-adapter": row(Kind.OWNED_API),
    "api-job-cancel": row(Kind.OWNED_API, Call("POST", 409)),
    "api-job-checkpoints": row(Kind.OWNED_API),
    "api-job-config": row(Kind.OWNED_API),
    "api-job-events": row(Kind.OWNED_API),
    "api-job-export": row(Kind.OWNED_API, GET, Call("POST", 202)),
    "api-job-metrics": row(Kind.OWNED_API),
    "api-job-resume": row(Kind.OWNED_API, Call("POST", 409)),
    "api-job-retry": row(Kind.OWNED_API, Call("POST", 201)),
    "api-token-list": row(Kind.API, GET, Call("POST", 201, body={"name": "matrix"})),
    "api-token-detail": row(Kind.OWN_ONLY_API, Call("DELETE", 204)),
    "api-evaluation-list": row(
        Kind.API, GET, Call("POST", 202, body=evaluation_body, others={OTHER: NOT_FOUND})
    ),
    "api-evaluation-detail": row(Kind.OWNED_API),
    "api-generation-list": row(
        Kind.API,
        GET,
        Call(
            "POST",
            400,
            body=generation_body,
            error_field="temperature",
            others={OTHER: (400, "models")},
        ),
    ),
    "api-generation-detail": row(Kind.OWNED_API),
    "api-generation-cancel": row(Kind.OWNED_API, Call("POST", 409)),
    "api-generation-vote": row(
        Kind.OWNED_API, Call("POST", body=api_vote_body, others={STAFF: NOT_FOUND})
    ),
    "api-schema": row(Kind.PUBLIC),
    "api-docs": row(Kind.PUBLIC),
    # --- the OpenAI-compatible API ------------------------------------------------------
    "openai-models": row(Kind.OPENAI),
    "openai-model": row(Kind.OWNED_OPENAI),
    # Another user's fine-tuned model is refused as an unknown one.
    "openai-chat-completions": row(
        Kind.OPENAI, Call("POST", 400, body=chat_body, others={OTHER: NOT_FOUND})
    ),
    "openai-completions": row(
        Kind.OPENAI, Call("POST", 400, body=completion_body, others={OTHER: NOT_FOUND})
    ),
    "openai-files": row(Kind.OPENAI, GET, Call("POST", 400)),
    "openai-file": row(Kind.OWNED_OPENAI, GET, Call("DELETE")),
    "openai-file-content": row(Kind.OWNED_OPENAI),
    # Another user's file is refused as a missing one.
    "openai-fine-tuning-jobs": row(
        Kind.OPENAI, GET, Call("POST", body=fine_tuning_body, others={OTHER: NOT_FOUND})
    ),
    "openai-fine-tuning-job": row(Kind.OWNED_OPENAI),
    # OpenAI answers a finished job's cancel with 400 (job_not_cancellable).
    "openai-fine-tuning-job-cancel": row(Kind.OWNED_OPENAI, Call("POST", 400)),
    "openai-fine-tuning-job-events": row(Kind.OWNED_OPENAI),
    "openai-fine-tuning-job-checkpoints": row(Kind.OWNED_OPENAI),
    # Any other path under /v1/: OpenAI's 404, whoever asks.
    "v1/^.*$": row(Kind.PUBLIC, Call(expect=404)),
    # --- the audit log: operators only; anyone else gets the 404 of no page -------------
    "audit-log": row(Kind.SIGNED_IN, Call(expect=NOT_FOUND, others={STAFF: 200})),
    "audit-export": row(Kind.SIGNED_IN, Call(expect=NOT_FOUND, others={STAFF: 200})),
    # --- usage: each user's own month; every user's for operators (403 for others) -------
    "usage": row(Kind.SIGNED_IN),
    "usage-export": row(Kind.SIGNED_IN),
    "ops-usage": row(Kind.SIGNED_IN, Call(expect=403, others={STAFF: 200})),
    "ops-usage-export": row(Kind.SIGNED_IN, Call(expect=403, others={STAFF: 200})),
    "api-usage": row(Kind.API),
    # --- the admin's own pages ----------------------------------------------------------
    "admin:index": row(Kind.ADMIN),
    "admin:login": row(Kind.PUBLIC, Call(others={STAFF: SentTo("/admin/")})),
    # Staff are logged out; anyone else is sent to the admin, which asks them to log in.
    "admin:logout": row(
        Kind.ADMIN,
        Call(
            "POST",
            SentTo("/login/"),
            others=dict.fromkeys([ANONYMOUS, OWNER, OTHER], SentTo("/admin/")),
        ),
    ),
    "admin:password_change": row(Kind.ADMIN),
    "admin:password_change_done": row(Kind.ADMIN),
    "admin:autocomplete": row(Kind.ADMIN, Call(expect=403)),  # needs a field to complete
    "admin:jsi18n": row(Kind.ADMIN),
    # No model of ours has a page of its own to link to from the admin.
    "admin:view_on_site": row(Kind.ADMIN, Call(expect=404)),
    "admin:app_list": row(Kind.ADMIN),
    "admin/(?P<url>.*)$": row(Kind.ADMIN, Call(expect=404)),
    "admin:auth_user_password_change": row(Kind.ADMIN),
}

# The models in the admin, each with what staff get on its pages ("add" is refused
# where a ModelAdmin says so: tokens, jobs and checkpoints are made elsewhere).
ADMIN_MODELS: dict[str, dict[str, int]] = {
    "auth.group": {},
    "auth.user": {},
    "axes.accessattempt": {"add": 403},
    "axes.accesslog": {"add": 403},
    "axes.accessfailurelog": {"add": 403},
    "studio.apitoken": {"add": 403},
    "datasets.dataset": {},
    "jobs.catalogmodel": {},
    "jobs.finetunejob": {"add": 403},
    "jobs.checkpoint": {"add": 403, "delete": 403},
    # Records, read only in the admin: seen, never added, changed or deleted.
    "jobs.metricpoint": {"add": 403, "delete": 403},
    "serving.generation": {"add": 403, "delete": 403},
    "serving.vote": {"add": 403, "delete": 403},
    "serving.evaluation": {"add": 403, "delete": 403},
    "quotas.quotaoverride": {},
    "usage.deviceprice": {},
    # The training workers' record of device time: read only.
    "usage.deviceuse": {"add": 403, "delete": 403},
}
ADMIN_PAGES = {"changelist": 200, "add": 200, "history": 200, "delete": 200, "change": 200}


def admin_rows() -> dict[str, Row]:
    rows = {}
    for label, overrides in ADMIN_MODELS.items():
        app, model = label.split(".")
        for page, status in ADMIN_PAGES.items():
            rows[f"admin:{app}_{model}_{page}"] = row(
                Kind.ADMIN, Call(expect=overrides.get(page, status))
            )
        # Its unnamed /admin/<app>/<model>/<id>/ sends staff to the change page.
        rows[f"admin/{app}/{model}/<path:object_id>/"] = row(
            Kind.ADMIN, Call(expect=SentTo(f"/admin/{app}/{model}/"))
        )
    return rows


ALL_ROUTES = {**ROUTES, **admin_rows()}
# Paths for the catch-all patterns, which reverse() cannot build.
CATCH_ALL_PATHS = {"v1/^.*$": "/v1/engines", "admin/(?P<url>.*)$": "/admin/nothing/here/"}


# --- the routes, as the URLconf has them -----------------------------------------------------


@dataclass(frozen=True)
class Route:
    key: str  # the URL name, namespaced; the pattern for an unnamed route
    name: str | None
    pattern: str
    params: tuple[str, ...]
    actions: dict | None  # a DRF viewset's {method: action}


def url_routes(resolver=None, prefix: str = "", namespace: str = "") -> list[Route]:
    """Every route of the URLconf, walked down from the root resolver."""
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        pattern = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found += url_routes(entry, pattern, inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else None
            found.append(
                Route(
                    key=name or pattern,
                    name=name,
                    pattern=pattern,
                    params=tuple(entry.pattern.regex.groupindex),
                    actions=getattr(entry.callback, "actions", None),
                )
            )
    return found


ROUTES_FOUND = url_routes()


def cases() -> list:
    params = []
    for route in ROUTES_FOUND:
        listed = ALL_ROUTES.get(route.key)
        for call in listed.calls if listed else ():
            for role in ROLES:
                params.append(
                    pytest.param(route, listed.kind, call, role,
                                 id=f"{call.method} {route.key} as {role}")
                )  # fmt: skip
    return params


# --- the world: real objects of the owner ----------------------------------------------------


@dataclass
class World:
    users: dict
    secrets: dict
    dataset: Dataset
    job: FineTuneJob
    sibling: FineTuneJob  # a second job of the owner's, to compare with the first
    evaluation: Evaluation
    generation: Generation
    spare_token: ApiToken
    group: Group
    checkpoint: Checkpoint
    axes: dict
    sweep: Sweep

    @property
    def model_name(self) -> str:
        return self.job.fine_tuned_model

    @property
    def file_id(self) -> str:
        return f"file-{self.dataset.pk.hex}"

    def params(self, route: Route) -> dict:
        """The route's URL parameters, naming the owner's objects."""
        openai = route.key.startswith("openai-")
        objects = {
            "dataset_id": self.dataset.pk,
            "job_id": f"ftjob-{self.job.pk.hex}" if openai else self.job.pk,
            "file_id": self.file_id,
            "generation_id": self.generation.pk,
            "evaluation_id": self.evaluation.pk,
            "sweep_id": self.sweep.pk,
            "token_id": self.spare_token.pk,
            "model": self.model_name,
            "model_id": "tailor-tiny",
            "slug": "support-routing",
            "app_label": "datasets",
            "id": self.users[OWNER].pk,
            "content_type_id": ContentType.objects.get_for_model(Dataset).pk,
        }
        if "object_id" in route.params:
            objects["object_id"] = self.admin_object(route)
        return {name: objects[name] for name in route.params}

    def absent(self) -> "World":
        """This world with every id of the owner's objects replaced by one that
        names nothing: what a 404 for a missing object looks like."""
        gone = uuid.uuid4()
        job = SimpleNamespace(
            pk=gone, fine_tuned_model=self.model_name.replace(self.job.pk.hex[:8], gone.hex[:8])
        )
        return dataclasses.replace(
            self, dataset=SimpleNamespace(pk=gone), job=job, sibling=SimpleNamespace(pk=uuid.uuid4()),
            generation=SimpleNamespace(pk=gone),
            evaluation=SimpleNamespace(pk=gone), spare_token=SimpleNamespace(pk=gone),
            sweep=SimpleNamespace(pk=gone),
        )  # fmt: skip

    def identifiers(self) -> list[str]:
        """How an answer may name the owner's objects, longest first."""
        ids = [self.model_name, self.file_id, f"ftjob-{self.job.pk.hex}"]
        for pk in (self.dataset.pk, self.job.pk, self.sibling.pk, self.generation.pk,
                   self.evaluation.pk, self.spare_token.pk, self.sweep.pk):  # fmt: skip
            ids += [str(pk), pk.hex]
        return sorted(ids, key=len, reverse=True)

    def admin_object(self, route: Route):
        if route.key == "admin:view_on_site":
            return self.dataset.pk
        by_model = {
            "auth/group": self.group.pk, "auth/user": self.users[OWNER].pk,
            "studio/apitoken": self.spare_token.pk, "datasets/dataset": self.dataset.pk,
            "jobs/catalogmodel": "tailor-tiny", "jobs/finetunejob": self.job.pk,
            "jobs/checkpoint": self.checkpoint.pk, **self.axes,
            "serving/generation": self.generation.pk, "serving/evaluation": self.evaluation.pk,
            "jobs/metricpoint": MetricPoint.objects.filter(job_id=self.job.pk).first().pk,
            "serving/vote": Vote.objects.filter(generation_id=self.generation.pk).first().pk,
            "quotas/quotaoverride": QuotaOverride.objects.get_or_create(group=self.group)[0].pk,
            "usage/deviceprice": DevicePrice.objects.get_or_create(
                device="cpu", defaults={"price_per_hour": 1})[0].pk,
            "usage/deviceuse": DeviceUse.objects.get(job=self.job).pk,
        }  # fmt: skip
        model = re.sub(r"^admin:(\w+?)_(\w+)_\w+$", r"\1/\2", route.key)
        if model == route.key:  # unnamed: admin/<app>/<model>/<path:object_id>/
            model = "/".join(route.pattern.split("/")[1:3])
        return by_model[model]

    def url(self, route: Route) -> str:
        if route.key in CATCH_ALL_PATHS:
            return CATCH_ALL_PATHS[route.key]
        params = self.params(route)
        if route.name:
            return reverse(route.name, kwargs=params)
        path = route.pattern
        for name, value in params.items():
            path = re.sub(rf"<(\w+:)?{name}>", str(value), path)
        return "/" + path


def succeeded_job(owner, dataset) -> FineTuneJob:
    """A job as the ledger leaves one that succeeded and was exported: its adapter
    and both archives where the runner writes them, in the job's own folder."""
    # Never queued (start=False): a session worker started by an earlier
    # test would otherwise claim it before it is marked succeeded.
    job = create_job(owner, check_start_job(owner, {
        "name": "Routing", "data": {"dataset": str(dataset.pk)},
        "model": {"base_model": "tailor-tiny", "method": "lora"},
    }), start=False)  # fmt: skip
    adapter = job.folder / "attempt-1" / "adapter"
    adapter.mkdir(parents=True)
    (adapter.parent / ADAPTER_ZIP).write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    merged = job.folder / "merged.zip"
    merged.write_bytes(b"PK\x05\x06" + bytes(18))
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, adapter_path=str(adapter), finished_at=timezone.now(),
        export_status="ready", export_path=str(merged),
    )  # fmt: skip
    job.refresh_from_db()
    return job


def build_world() -> World:
    users = get_user_model().objects
    people = {
        OWNER: users.create_user("alice", "alice@example.com", PASSWORD),
        OTHER: users.create_user("bob", "bob@example.com", PASSWORD),
        # An operator as `manage.py ensure_admin` makes one.
        STAFF: users.create_superuser("olga", "olga@example.com", PASSWORD),
    }
    secrets = {}
    for role, person in people.items():
        secrets[role] = create_token(person, "matrix").secret
    # No minute's window may refuse a case: the matrix sends hundreds of requests.
    ApiToken.objects.filter(user__in=people.values()).update(rate_limit_per_minute=0)
    spare = create_token(people[OWNER], "spare").token
    dataset = ready_sample(people[OWNER])
    job = succeeded_job(people[OWNER], dataset)
    sibling = succeeded_job(people[OWNER], dataset)
    checkpoint = Checkpoint.objects.create(
        job=job, attempt=1, step=75, path=str(job.folder / "attempt-1" / "checkpoint-75")
    )
    evaluation = Evaluation.objects.create(
        job=job, trigger="automatic", sample_size=1, status="succeeded",
        finished_at=timezone.now(),
        results={"base": {"exact_match": 0.0}, "fine_tuned": {"exact_match": 1.0},
                 "rows": 1, "sample_size": 1,
                 "samples": [{"prompt": "Where is my sofa?", "reference": "shipping",
                              "base": "the", "fine_tuned": "shipping", "base_exact": False,
                              "fine_tuned_exact": True}]},
    )  # fmt: skip
    checked = generations.check_request(
        people[OWNER],
        GenerationRequest(models=["tailor-tiny", job.fine_tuned_model],
                          messages=[{"role": "user", "content": "Where is my sofa?"}]),
    )  # fmt: skip
    generation = generations.create_generation(
        people[OWNER], checked, source=GenerationSource.PLAYGROUND
    )
    Generation.objects.filter(pk=generation.pk).update(
        status=GenerationStatus.SUCCEEDED, finished_at=timezone.now()
    )
    generation.refresh_from_db()
    MetricPoint.objects.create(job=job, attempt=1, step=1, train_loss=1.0)
    DeviceUse.objects.create(
        owner=people[OWNER], job=job, job_name=job.name, attempt=1, worker="train@here",
        device="cpu", started_at=job.finished_at, last_seen_at=job.finished_at,
        ended_at=job.finished_at,
    )  # fmt: skip
    Vote.objects.create(generation=generation, owner=people[OWNER], model_a="tailor-tiny",
                        model_b=job.fine_tuned_model, winner="b")  # fmt: skip
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    axes = {
        "axes/accessattempt": AccessAttempt.objects.create(
            username="alice", ip_address="127.0.0.1", failures_since_start=1
        ).pk,
        "axes/accesslog": AccessLog.objects.create(username="alice", ip_address="127.0.0.1").pk,
        "axes/accessfailurelog": AccessFailureLog.objects.create(
            username="alice", ip_address="127.0.0.1"
        ).pk,
    }
    return World(
        users=people, secrets=secrets, dataset=dataset, job=job, sibling=sibling,
        evaluation=evaluation,
        generation=generation, spare_token=spare, group=Group.objects.create(name="operators"),
        checkpoint=checkpoint, axes=axes, sweep=owned_sweep(people[OWNER], job),
    )  # fmt: skip


def owned_sweep(owner, job) -> Sweep:
    """A running sweep of the owner's (rows only: these cases never reach its study)."""
    return Sweep.objects.create(
        owner=owner, name="matrix sweep", base_config=job.config, budget=2, metric="val_loss",
        space={"lora_rank": {"values": [4, 8]}}, sampler="grid", pruner="none",
        study_name=f"matrix-{uuid.uuid4().hex}",
    )  # fmt: skip


def tear_down(world: World) -> None:
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    for model in (AccessAttempt, AccessLog, AccessFailureLog):
        model.objects.all().delete()
    world.group.delete()
    people = list(world.users.values())
    # Jobs first: a job's dataset is protected while the job exists.
    for job in FineTuneJob.objects.filter(owner__in=people):
        shutil.rmtree(job.folder, ignore_errors=True)
        job.delete()
    for dataset in Dataset.objects.filter(owner__in=people):
        shutil.rmtree(dataset.folder, ignore_errors=True)
    get_user_model().objects.filter(pk__in=[p.pk for p in people]).delete()


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, demo_models):
    """The owner's objects, committed once for the module (each case rolls back its own)."""
    with django_db_blocker.unblock():
        built = build_world()
    yield built
    with django_db_blocker.unblock():
        tear_down(built)


def client_for(kind: Kind, role: str, world: World, **options):
    user = world.users.get(role)
    if kind in TOKEN_APIS:
        client = APIClient(**options)
        if user:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.secrets[role]}")
        return client
    if kind in OPENAI_APIS:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {world.secrets[role]}"} if user else {}
        return Client(**options, **headers)
    client = Client(**options)
    if user:
        client.force_login(user)
    return client


def send(client, kind: Kind, call: Call, url: str, world: World):
    body = call.body(world) if callable(call.body) else call.body
    query = call.query(world) if callable(call.query) else call.query
    method = getattr(client, call.method.lower())
    if body is None:
        return method(url + query)
    if kind in TOKEN_APIS or kind in OPENAI_APIS:
        return method(url + query, body, content_type="application/json")
    return method(url + query, body)


# --- the tests -------------------------------------------------------------------------------


def test_every_route_is_classified():
    unclassified = sorted({route.key for route in ROUTES_FOUND} - ALL_ROUTES.keys())
    assert not unclassified, (
        "Routes nobody classified: add each to ROUTES in tests/test_access_matrix.py "
        f"with whom it is for: {unclassified}"
    )
    gone = sorted(ALL_ROUTES.keys() - {route.key for route in ROUTES_FOUND})
    assert not gone, f"Rows for routes that no longer exist: {gone}"


def test_every_method_of_an_api_route_is_classified():
    for route in ROUTES_FOUND:
        if route.actions:
            listed = {call.method.lower() for call in ALL_ROUTES[route.key].calls}
            # DRF adds "head" (as "get") to a viewset's actions at its first
            # request: once an earlier test called the route, it is there.
            actions = set(route.actions) - {"head"}
            assert listed == actions, (route.key, route.actions)


def test_every_admin_model_is_classified():
    registered = {model._meta.label_lower for model in admin_site._registry}
    assert registered == ADMIN_MODELS.keys()


@pytest.mark.parametrize(("route", "kind", "call", "role"), cases())
def test_each_role_gets_what_the_route_is_for(world, route, kind, call, role):
    url = world.url(route)
    want = expected(kind, role, call)
    response = send(client_for(kind, role, world), kind, call, url, world)
    check(response, want, route, kind, call, url)
    if role in (ANONYMOUS, OTHER) and call.method == "GET" and response.status_code == 200:
        # Nor does any list or page of theirs name the owner's objects.
        assert said(response, world) == without_token(response), f"{url} shows the owner's objects"
    if want == NOT_FOUND:
        # Exactly what a missing object gets: nothing says that this one exists.
        ghost = world.absent()
        missing = send(client_for(kind, role, world), kind, call, ghost.url(route), ghost)
        assert missing.status_code == 404
        assert said(response, world) == said(missing, ghost)


def check(response, want, route: Route, kind: Kind, call: Call, url: str) -> None:
    status = response.status_code
    where = f"{call.method} {url} -> {status}: {text_of(response)[:300]!r}"
    designed = want if isinstance(want, frozenset) else {want}
    assert status < 500 or status in designed, where
    if isinstance(want, SentTo):
        assert status == 302 and response["Location"].startswith(want.prefix), where
    elif want == NOT_FOUND:
        assert status == 404, where
        if kind in TOKEN_APIS:
            assert response.json()["error"]["code"] == "not_found", where
        elif kind in OPENAI_APIS:
            assert response.json()["error"]["code"].endswith("not_found"), where
    elif isinstance(want, tuple):
        assert (status, response.json()["error"].get("field")) == want, where
    elif isinstance(want, frozenset):
        assert status in want, where
    else:
        assert status == want, where
        # Sent on, but not to log in: a signed-in user's request was let through.
        assert status != 302 or "login/" not in response["Location"], where
    if want == call.expect and call.error_field:
        assert response.json()["error"].get("field") == call.error_field, where
    if kind in TOKEN_APIS and status == 401:
        assert response.json()["error"]["code"] == "not_authenticated", where
    if kind in OPENAI_APIS and status == 401:
        assert response.json()["error"]["code"] == "invalid_api_key", where


def text_of(response) -> str:
    if response.streaming:  # a download: its bytes are not what is compared
        return f"<{response.get('Content-Type')}: {response.get('Content-Disposition')}>"
    return response.content.decode(errors="replace")


# A page's CSRF token is masked afresh on every render: two answers that
# tell the same thing differ in it, and it says nothing about the object.
CSRF_TOKEN = re.compile(r'("X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+')


def without_token(response) -> str:
    return CSRF_TOKEN.sub(r"\1…", text_of(response))


def said(response, world: World) -> str:
    """The answer's body, with the page's CSRF token and the ids of
    `world`'s objects blanked out."""
    text = without_token(response)
    for name in world.identifiers():
        text = text.replace(name, "…")
    return text


# --- staff without the admin's permissions --------------------------------------------------


@pytest.mark.parametrize("label", sorted(ADMIN_MODELS))
def test_staff_without_permissions_see_no_model_in_the_admin(world, django_user_model, label):
    """is_staff alone opens the admin's door, not its models: each needs its permission."""
    clerk = django_user_model.objects.create_user("clerk", password=PASSWORD, is_staff=True)
    client = Client()
    client.force_login(clerk)
    app, model = label.split(".")
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse(f"admin:{app}_{model}_changelist")).status_code == 403


# --- another user's fine-tuned model, by name ------------------------------------------------

UNKNOWN = "ft:tailor-tiny:alice::0badc0de"


def asked(world, role: str, surface: str, name: str):
    """What `role` gets for asking the model `name` on one surface: (status, body)."""
    token = {"HTTP_AUTHORIZATION": f"Bearer {world.secrets[role]}"}
    chat = {"model": name, "messages": [{"role": "user", "content": "Where is my sofa?"}]}
    if surface == "/v1/chat/completions":
        response = Client(**token).post(surface, chat, content_type="application/json")
    elif surface == "/v1/completions":
        response = Client(**token).post(
            surface, {"model": name, "prompt": "Where is my sofa?"}, content_type="application/json"
        )
    elif surface == "/v1/models/<model>":
        response = Client(**token).get(f"/v1/models/{name}")
    else:  # /api/v1/generations/
        response = client_for(Kind.API, role, world).post(
            surface, {"models": [name], "text": "Where is my sofa?"}, format="json"
        )
    return response.status_code, text_of(response).replace(name.replace("\x00", "\\u0000"), "…")


@pytest.mark.parametrize(
    "surface",
    ["/v1/chat/completions", "/v1/completions", "/v1/models/<model>", "/api/v1/generations/"],
)
def test_another_users_fine_tuned_model_is_refused_like_an_unknown_one(world, surface):
    refused = asked(world, OTHER, surface, world.model_name)
    assert refused == asked(world, OTHER, surface, UNKNOWN)
    assert refused[0] in (400, 404)


@pytest.mark.parametrize("name", ["tailor\x00tiny", "ft:tailor-tiny:alice::\ud800"])
@pytest.mark.parametrize("surface", ["/v1/chat/completions", "/v1/completions"])
def test_a_model_name_no_database_can_look_up_is_refused_like_an_unknown_one(world, surface, name):
    """A NUL (PostgreSQL) or a lone surrogate (any database) in a name was a 500."""
    status, body = asked(world, OWNER, surface, name)
    assert status == 404
    error = json.loads(body)["error"]
    assert (error["code"], error["param"]) == ("model_not_found", "model")


def test_the_playground_socket_refuses_another_users_model_like_an_unknown_one(world):
    async def ask(name: str) -> dict:
        socket = websocket(world.users[OTHER], "/ws/playground/")
        assert (await socket.connect(timeout=10))[0]
        await socket.send_json_to({"action": "run", "models": [name], "prompt": "hi",
                                   "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
        answer = await socket.receive_json_from(timeout=10)
        await socket.disconnect()
        return answer

    async def scenario():
        foreign = await ask(world.model_name)
        unknown = await ask(UNKNOWN)
        assert foreign["type"] == "invalid"
        text = json.dumps(foreign).replace(world.model_name, "…")
        assert text == json.dumps(unknown).replace(UNKNOWN, "…")

    run_in_own_loop(scenario)


# --- CSRF: a session's unsafe request needs the page's token ---------------------------------


def csrf_cases() -> list:
    params = []
    for route in ROUTES_FOUND:
        listed = ALL_ROUTES[route.key]
        for call in listed.calls:
            if call.method in UNSAFE:
                params.append(
                    pytest.param(route, listed.kind, call, id=f"{call.method} {route.key}")
                )
    return params


@pytest.mark.parametrize(("route", "kind", "call"), csrf_cases())
def test_a_session_request_without_its_csrf_token_is_refused(world, route, kind, call):
    """As a page of another site would send it: with the browser's session cookie,
    without the token only the studio's own pages hold."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users[STAFF if kind == Kind.ADMIN else OWNER])
    body = call.body(world) if callable(call.body) else call.body
    url = world.url(route) + call.query
    method = getattr(client, call.method.lower())
    if kind in PAGES:
        response = method(url, body) if body is not None else method(url)
        assert response.status_code == 403, text_of(response)[:300]
        assert "CSRF verification failed" in text_of(response)
    elif kind in TOKEN_APIS:
        response = method(url, body or {}, content_type="application/json")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
        assert response.json()["error"]["message"].startswith("CSRF Failed")
    else:  # /v1/ takes no session at all, with or without a token
        response = method(url, body or {}, content_type="application/json")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"


# --- websockets -----------------------------------------------------------------------------

# Every websocket route (its pattern) -> whom it is for.
WEBSOCKETS: dict[str, Kind] = {
    "ws/datasets/<uuid:dataset_id>/": Kind.OWNED,
    "ws/jobs/": Kind.SIGNED_IN,
    "ws/jobs/<uuid:job_id>/": Kind.OWNED,
    "ws/playground/": Kind.SIGNED_IN,
}
SOCKET_PATTERNS = [str(entry.pattern) for entry in websocket_urlpatterns]
OUR_ORIGIN = "http://127.0.0.1"


def websocket(user, path: str, origin: str | None = OUR_ORIGIN) -> WebsocketCommunicator:
    # The whole ASGI application, origin check included; the scope names the
    # user, as AuthMiddlewareStack would from the session cookie.
    communicator = WebsocketCommunicator(application, path)
    communicator.scope["user"] = user
    headers = [(b"host", b"127.0.0.1")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator.scope["headers"] = headers
    return communicator


def socket_path(world: World, pattern: str) -> str:
    path = pattern
    for name, value in (("dataset_id", world.dataset.pk), ("job_id", world.job.pk)):
        path = path.replace(f"<uuid:{name}>", str(value))
    return "/" + path


def opens(user, path: str, origin: str | None = OUR_ORIGIN) -> bool:
    async def scenario():
        socket = websocket(user, path, origin)
        connected, _ = await socket.connect(timeout=10)
        # Refused or not, the consumer ends here (a refused one would wait on;
        # Channels' denier of another origin never ends by itself).
        await socket.disconnect(timeout=1 if connected else 0.1)
        return connected

    return run_in_own_loop(scenario)


def test_every_websocket_route_is_classified():
    assert sorted(SOCKET_PATTERNS) == sorted(WEBSOCKETS), (
        "Add each websocket route to WEBSOCKETS in tests/test_access_matrix.py"
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("pattern", SOCKET_PATTERNS)
def test_each_role_may_open_what_the_socket_is_for(world, pattern, role):
    kind = WEBSOCKETS[pattern]
    user = world.users.get(role, AnonymousUser())
    allowed = role != ANONYMOUS and not (role == OTHER and kind == Kind.OWNED)
    assert opens(user, socket_path(world, pattern)) is allowed


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://127.0.0.1.evil.example", "https://evil.example:443", "null",
     None],
)  # fmt: skip
@pytest.mark.parametrize("pattern", SOCKET_PATTERNS)
def test_a_page_of_another_origin_cannot_open_a_socket(world, pattern, origin):
    """Even the owner's browser, sending her cookie from another site's page."""
    assert opens(world.users[OWNER], socket_path(world, pattern), origin) is False


# --- the audit log: every change a route makes is written down, with its door ---------------

DOORS = {
    **dict.fromkeys(PAGES, Door.PAGE), **dict.fromkeys(TOKEN_APIS, Door.API),
    **dict.fromkeys(OPENAI_APIS, Door.OPENAI), Kind.ADMIN: Door.ADMIN,
}  # fmt: skip
# Tables whose writes are bookkeeping, not a change anyone asked for: sessions,
# django-axes's count of failed logins (the failure itself is audited, by its
# signal), the audit log itself and the admin's own log (copied into it).
BOOKKEEPING = {
    "django_session", "axes_accessattempt", "axes_accesslog", "axes_accessfailurelog",
    "audit_auditentry", "django_admin_log",
}  # fmt: skip
WRITE = re.compile(r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)
# A token's last use, which authentication writes at most once a minute.
LAST_USE = re.compile(r'\s*UPDATE\s+"?studio_apitoken"?\s+SET\s+"?last_used_at"?\s*=\s*%s\s+WHERE')


@contextlib.contextmanager
def changes_written():
    """The tables that the queries run inside the block changed, bookkeeping aside
    (a conditional UPDATE that matched no row changed nothing)."""
    tables: list[str] = []

    def spy(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        written = WRITE.match(sql)
        bookkeeping = written and (written[1] in BOOKKEEPING or LAST_USE.match(sql))
        if written and not bookkeeping and context["cursor"].rowcount != 0:
            tables.append(written[1])
        return result

    with connection.execute_wrapper(spy):
        yield tables


def audited(request: Callable) -> tuple[object, list[str], list]:
    """(response, tables changed, audit entries written) of `request()`."""
    last = AuditEntry.objects.aggregate(last=Max("pk"))["last"] or 0
    with changes_written() as tables:
        response = request()
    return response, sorted(set(tables)), list(AuditEntry.objects.filter(pk__gt=last))


def check_audited(where: str, kind: Kind, user, method: str, tables, entries) -> None:
    if method == "GET":
        # Reading changes nothing and costs no write.
        assert not tables and not entries, f"{where} wrote {tables or entries} on a read"
    elif tables:
        assert entries, (
            f"{where} changed {tables} and wrote no audit entry: call "
            "audit.services.record in the service that made the change"
        )
    for entry in entries:
        assert (entry.door, entry.actor_id, entry.ip) == (DOORS[kind], user.pk, "127.0.0.1"), (
            f"{where}: {entry} came through {entry.door} from {entry.ip}"
        )


def audit_cases() -> list:
    return [
        pytest.param(route, ALL_ROUTES[route.key].kind, call, id=f"{call.method} {route.key}")
        for route in ROUTES_FOUND
        # An unclassified route fails test_every_route_is_classified.
        for call in (ALL_ROUTES[route.key].calls if route.key in ALL_ROUTES else ())
    ]


@pytest.mark.parametrize(("route", "kind", "call"), audit_cases())
def test_every_change_a_route_makes_is_audited_with_its_door(world, route, kind, call):
    """Each call of the table, as the owner (staff for the admin): a request that
    changed anything wrote an audit entry, as its user, from its address, through
    its door; a read wrote nothing. A new route's row brings it here."""
    role = STAFF if kind == Kind.ADMIN else OWNER
    client = client_for(kind, role, world)
    url = world.url(route)
    response, tables, entries = audited(lambda: send(client, kind, call, url, world))
    where = f"{call.method} {url} -> {response.status_code}"
    check_audited(where, kind, world.users[role], call.method, tables, entries)


def admin_actions() -> list:
    """Every action of every model in the admin, the site's own (delete) included."""
    params = []
    for model, model_admin in admin_site._registry.items():
        names = [name for name, _ in admin_site.actions]
        names += [model_admin.get_action(action)[1] for action in model_admin.actions or ()]
        for name in dict.fromkeys(names):
            label = model._meta.label_lower
            params.append(pytest.param(label, name, id=f"{label} {name}"))
    return params


@pytest.mark.parametrize(("label", "action"), admin_actions())
def test_every_admin_action_that_changes_something_is_audited(world, label, action):
    """Each action on one of the owner's objects, confirmed, as staff."""
    app, model = label.split(".")
    changelist = Route(f"admin:{app}_{model}_changelist", None, "", (), None)
    target = world.admin_object(dataclasses.replace(changelist, key=f"admin:{app}_{model}_change"))
    client = client_for(Kind.ADMIN, STAFF, world)
    body = {"action": action, "_selected_action": [str(target)], "index": "0", "post": "yes"}
    url = reverse(changelist.key)
    response, tables, entries = audited(lambda: client.post(url, body))
    assert response.status_code in (200, 302), response.status_code
    check_audited(f"{action} on {label}", Kind.ADMIN, world.users[STAFF], "POST", tables, entries)


def test_an_admin_change_form_is_audited_with_what_it_changed(world):
    client = client_for(Kind.ADMIN, STAFF, world)
    url = reverse("admin:auth_group_change", args=[world.group.pk])
    response, tables, entries = audited(lambda: client.post(url, {"name": "operators on call"}))
    assert response.status_code == 302
    check_audited(
        "the group's change form", Kind.ADMIN, world.users[STAFF], "POST", tables, entries
    )
    [entry] = entries
    assert (entry.action, entry.target_type, entry.target_id) == (
        "update",
        "auth.group",
        str(world.group.pk),
    )
    assert entry.detail == {"change": "Changed Name."}
