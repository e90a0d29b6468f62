"""Fine-tuning jobs under /v1/fine_tuning/jobs: OpenAI's requests in Tailor's
terms (create, cancel), and the endpoints.

A create request becomes a configuration document on the Quick preset, which
`check_start_job` checks and `create_job` stores and queues, as for the
wizard; its files must be validated first, and a create request waits a few
seconds for files still being validated. Every problem is a `RequestError`
naming the field as the client named it ("hyperparameters.n_epochs",
"training_file"). `method` (supervised or DPO, with its hyperparameters) is
read by `methods`, which also checks that it trains on the file's data; a
fine-tuned model's name as `model` trains on from its job's adapter. The
objects answered (jobs, events, checkpoints) are built by `objects`; the
endpoints only read the request and answer in OpenAI's shape.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.http import JsonResponse

from datasets_app.models import DatasetStatus
from jobs import config as cfg
from jobs.models import FineTuneJob
from jobs.numbers import NumberError, read_number
from jobs.services import lifecycle
from serving.openai import methods, objects
from serving.openai.http import (
    RequestError,
    answered_in_openai_shape,
    openai_endpoint,
    read_json_body,
)
from serving.openai.integrations import read_integrations
from serving.openai.objects import FILE_PREFIX, status_details, user_file, user_job, uuid_of
from serving.services.names import UnknownModel, resolve_model

# A create request's fields; OpenAI refuses any other, and so does this.
CREATE_FIELDS = {
    "model",
    "training_file",
    "validation_file",
    "hyperparameters",
    "method",
    "suffix",
    "seed",
    "integrations",
    "metadata",
}
MAX_SUFFIX = 64  # OpenAI's limit
# The suffix becomes a part of the model name, whose parts ":" separates.
SUFFIX_PATTERN = re.compile(r"[A-Za-z0-9._-]*")
# A file the client has just uploaded is validated on a worker within
# seconds: a create request waits this long for it before refusing.
FILE_READY_TIMEOUT_S = 10.0
FILE_READY_POLL_S = 0.25

# Where a configuration field's errors go, named as the client named them.
CONFIG_PARAMS = {
    "data.dataset": "training_file",
    "data.validation_dataset": "validation_file",
    "model.base_model": "model",
    "model.method": "model",
    "model.start_from": "model",
    "objective": "method.type",
    "training.seed": "seed",
}
CONFIG_HYPERPARAMETERS = {
    "training.epochs": "n_epochs",
    "training.batch_size": "batch_size",
    "training.learning_rate": "learning_rate_multiplier",
    "preference.beta": "beta",
}


# --- reading a create request ----------------------------------------------------------------


@dataclass
class FineTuningRequest:
    """A create body, checked for shape; `hyperparameters` holds those not "auto"."""

    model: str
    training_file: str
    validation_file: str | None = None
    # OpenAI's method type (methods.py); `method_given`: the request named it.
    method: str = methods.SUPERVISED
    method_given: bool = False
    hyperparameters: dict = field(default_factory=dict)
    # Where the client put them: errors name this, then the hyperparameter.
    hyperparameters_at: str = "hyperparameters"
    seed: int | None = None
    suffix: str = ""
    metadata: dict = field(default_factory=dict)
    # `integrations` as the configuration's tracking section, and its fields'
    # names as the client wrote them.
    tracking: dict = field(default_factory=dict)
    tracking_params: dict = field(default_factory=dict)

    @property
    def files(self) -> dict[str, str]:
        """The files named, by the field that named them."""
        named = {"training_file": self.training_file}
        if self.validation_file:
            named["validation_file"] = self.validation_file
        return named


def _bad(param: str, message: str) -> RequestError:
    return RequestError(400, f"{param}: {message}", param=param)


def read_hyperparameters(value, where: str, kind: str = methods.SUPERVISED) -> dict:
    """The hyperparameters of method `kind` that are not "auto" (null counts as "auto")."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(where, 'must be an object such as {"n_epochs": 3}.')
    chosen = {}
    for name, raw in value.items():
        param = f"{where}.{name}"
        names = methods.HYPERPARAMETERS[kind]
        if name not in names:
            method = "DPO" if kind == methods.DPO else "supervised fine-tuning"
            raise _bad(param, f"is not a hyperparameter of {method} ({', '.join(names)}).")
        if raw is None or raw == "auto":
            continue
        # Numbers as JSON writes them ("3" is no number); ranges are the configuration's.
        try:
            if name in ("learning_rate_multiplier", "beta"):
                # Greater than 0; beta's upper bound is the configuration's.
                chosen[name] = read_number(raw, whole=False, lowest=0, lowest_open=True, text=False)
            else:
                chosen[name] = read_number(raw, whole=True, lowest=1, text=False)
        except NumberError as refused:
            raise _bad(param, f'{refused.message.removesuffix(".")}, or "auto".') from None
    return chosen


def _read_metadata(metadata) -> dict:
    """OpenAI's rules for metadata: at most 16 keys of 64 characters, text values of 512."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise _bad("metadata", "must be an object of at most 16 keys.")
    for key, value in metadata.items():
        if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
            raise _bad(
                "metadata",
                "keys must be at most 64 characters and values text of at most 512.",
            )
    return metadata


def _optional_text(data: dict, name: str, message: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(name, message)
    return value


def read_create_request(data: dict) -> FineTuningRequest:
    """Check a POST /v1/fine_tuning/jobs body for shape; RequestError (400)."""
    for name in data:
        if name not in CREATE_FIELDS:
            raise RequestError(400, f"Unrecognized request argument supplied: {name}",
                               param=name)  # fmt: skip
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model", "name a base model to fine-tune, such as 'tailor-tiny'.")
    training_file = data.get("training_file")
    if not isinstance(training_file, str) or not training_file:
        raise _bad("training_file", "must be the id of an uploaded file, such as 'file-…'.")
    validation_file = _optional_text(
        data, "validation_file", "must be the id of an uploaded file, such as 'file-…', or null."
    )
    suffix = _optional_text(data, "suffix", "must be text or null.") or ""
    if len(suffix) > MAX_SUFFIX:
        raise _bad("suffix", f"must be at most {MAX_SUFFIX} characters (it has {len(suffix)}).")
    if not SUFFIX_PATTERN.fullmatch(suffix):
        raise _bad(
            "suffix",
            "may hold only letters, digits, '-', '_' and '.': it becomes part of the model name.",
        )
    seed = data.get("seed")
    if seed is not None:
        try:
            seed = read_number(seed, whole=True, text=False)  # its range is the configuration's
        except NumberError as refused:
            raise _bad("seed", refused.message) from None
    tracking, tracking_params = read_integrations(data.get("integrations"))
    metadata = _read_metadata(data.get("metadata"))

    given = read_hyperparameters(data.get("hyperparameters"), "hyperparameters")
    where = "hyperparameters"
    kind, in_method = methods.read_method(data.get("method"))
    if in_method is not None:
        at = f"method.{kind}.hyperparameters"
        from_method = read_hyperparameters(in_method, at, kind)
        if given and from_method:
            raise _bad(
                "hyperparameters",
                f"give the hyperparameters once, in {at} "
                "(or the older top-level hyperparameters), not in both.",
            )
        if from_method or not given:
            given, where = from_method, at
    return FineTuningRequest(
        model=model.strip(),
        training_file=training_file,
        validation_file=validation_file or None,
        method=kind,
        method_given=data.get("method") is not None,
        hyperparameters=given,
        hyperparameters_at=where,
        seed=seed,
        suffix=suffix,
        metadata=metadata,
        tracking=tracking,
        tracking_params=tracking_params,
    )


# --- creating a job --------------------------------------------------------------------------


def unready_files(user, ask: FineTuningRequest) -> list[str]:
    """The fields naming files still being validated. RequestError: 404 for a
    missing (or foreign) file, 400 for one that failed validation."""
    pending = []
    for param, public_id in ask.files.items():
        dataset = user_file(user, public_id, param)
        if dataset.status == DatasetStatus.INVALID:
            raise RequestError(
                400,
                f"{param}: file '{public_id}' ({dataset.original_filename}) failed validation: "
                f"{status_details(dataset)}",
                param=param,
                code="invalid_file",
            )
        if dataset.status != DatasetStatus.READY:
            pending.append(param)
    return pending


async def wait_for_files(user, ask: FineTuningRequest) -> None:
    """Return once every file named is validated: a client that creates a job
    right after uploading (as OpenAI allows) need not poll. After
    FILE_READY_TIMEOUT_S, RequestError "file_not_ready"."""
    deadline = time.monotonic() + FILE_READY_TIMEOUT_S
    while pending := await sync_to_async(unready_files)(user, ask):
        if time.monotonic() >= deadline:
            public_id = ask.files[pending[0]]
            raise RequestError(
                400,
                f"File '{public_id}' is still being processed (it is being validated); "
                "try again shortly.",
                param=pending[0],
                code="file_not_ready",
            )
        await asyncio.sleep(FILE_READY_POLL_S)


def job_document(ask: FineTuningRequest, model: dict | None = None) -> dict:
    """The configuration document of a create request: the Quick preset, with
    the hyperparameters given in place of its values; `model` the model
    section (`model_section`), by default the base model named."""
    training = {}
    chosen = ask.hyperparameters
    if "n_epochs" in chosen:
        # Epochs decide the length: the preset's step cap would override them.
        training.update(epochs=chosen["n_epochs"], max_steps=0)
    if "batch_size" in chosen:
        training["batch_size"] = chosen["batch_size"]
    if ask.seed is not None:
        training["seed"] = ask.seed
    data = {"dataset": str(uuid_of(ask.training_file, FILE_PREFIX))}
    if ask.validation_file:
        data["validation_dataset"] = str(uuid_of(ask.validation_file, FILE_PREFIX))
    return {
        "preset": "quick",
        "data": data,
        "model": model or {"base_model": ask.model},
        "training": training,
        "tracking": ask.tracking,
        **methods.document_sections(ask.method, chosen),
    }


def model_section(user, ask: FineTuningRequest) -> dict:
    """The document's model section. A fine-tuned model's name ("ft:…"), as
    OpenAI allows, means training on from its job's adapter: its base, its
    adapter kind, and `start_from` its job (which the configuration checks)."""
    if not ask.model.startswith("ft:"):
        return {"base_model": ask.model}
    try:
        served = resolve_model(user, ask.model)
    except UnknownModel as unknown:
        raise _bad("model", unknown.message) from None
    job = served.job
    return {"base_model": job.base_model_id, "method": job.method, "start_from": str(job.pk)}


def _config_error(error: cfg.ConfigError, ask: FineTuningRequest, document: dict) -> RequestError:
    """The configuration's field errors, each named as the client named its field."""
    sentences, params = [], []
    for problem in error.errors:
        param = ask.tracking_params.get(problem.field) or CONFIG_PARAMS.get(problem.field)
        message = problem.message
        if problem.field in CONFIG_HYPERPARAMETERS:
            param = f"{ask.hyperparameters_at}.{CONFIG_HYPERPARAMETERS[problem.field]}"
        rate = document["training"].get("learning_rate")
        if problem.field == "training.learning_rate" and rate is not None:
            message = f"gives a learning rate of {rate:g}, which {message}"
        elif problem.field == "model.base_model" and message.startswith("is "):
            message = f"'{ask.model}' {message}"
        sentences.append(f"{param or problem.field}: {message}")
        if param:
            params.append(param)
    return RequestError(400, " ".join(sentences), param=params[0] if params else None)


def start_job(user, ask: FineTuningRequest) -> FineTuneJob:
    """Check the request as the wizard's configuration would be, then create
    and queue the job. Its files must be ready (`wait_for_files`), and the
    method must train on the training file's data."""
    training = user_file(user, ask.training_file, "training_file")
    methods.check_training_data(ask.method, ask.method_given, training, ask.training_file)
    document = job_document(ask, model_section(user, ask))
    try:
        draft = lifecycle.check_start_job(user, document)
        multiplier = ask.hyperparameters.get("learning_rate_multiplier")
        if multiplier is not None:
            # The draft holds the preset's rate for this model and method.
            document["training"]["learning_rate"] = draft.config.training.learning_rate * multiplier
            draft = lifecycle.check_start_job(user, document)
    except cfg.ConfigError as error:
        raise _config_error(error, ask, document) from None
    return lifecycle.create_job(user, draft, suffix=ask.suffix, metadata=ask.metadata)


def cancel(user, public_id: str) -> FineTuneJob:
    job = user_job(user, public_id)
    try:
        return lifecycle.cancel_job(job)
    except lifecycle.JobStateError as error:
        raise RequestError(
            400, f"{error} Only a queued or running job can be cancelled.",
            code="job_not_cancellable",
        ) from None  # fmt: skip


# --- the endpoints ---------------------------------------------------------------------------


async def _create_job(request, user) -> JsonResponse:
    ask = read_create_request(read_json_body(request))
    await wait_for_files(user, ask)
    job = await sync_to_async(start_job)(user, ask)
    return JsonResponse(await sync_to_async(objects.job_object)(job, staff=user.is_staff))


@openai_endpoint("GET", "POST")
async def fine_tuning_jobs(request, user):
    # Async: a create may wait seconds for its files, and must hold no thread meanwhile.
    with answered_in_openai_shape():
        if request.method == "POST":
            return await _create_job(request, user)
        return JsonResponse(await sync_to_async(objects.jobs_page)(user, request.GET))


@openai_endpoint("GET")
def fine_tuning_job(request, user, job_id: str):
    with answered_in_openai_shape():
        job = objects.user_job(user, job_id)
        return JsonResponse(objects.job_object(job, staff=user.is_staff))


@openai_endpoint("POST")
def fine_tuning_job_cancel(request, user, job_id: str):
    with answered_in_openai_shape():
        job = cancel(user, job_id)
        return JsonResponse(objects.job_object(job, staff=user.is_staff))


@openai_endpoint("GET")
def fine_tuning_job_events(request, user, job_id: str):
    with answered_in_openai_shape():
        return JsonResponse(objects.events_page(user, job_id, request.GET))


@openai_endpoint("GET")
def fine_tuning_job_checkpoints(request, user, job_id: str):
    with answered_in_openai_shape():
        return JsonResponse(objects.checkpoints_page(user, job_id, request.GET))
