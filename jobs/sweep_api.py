"""/api/v1/sweeps/: start a sweep over a job's configuration, follow its leaderboard.

POST takes what POST /api/v1/jobs/ takes, plus `sweep`: {parameters, budget,
metric, sampler, pruner, parallel}. Errors have the API's one shape: the
first bad field, dotted (`sweep.parameters.learning_rate`), in `error.field`.
Owner-scoped like jobs: another user's sweep is 404.
"""

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from jobs import config as cfg
from jobs.create_body import JobDocumentSerializer, job_document
from jobs.services import lifecycle, sweep_board, sweeps
from jobs.services import sweep_space as space
from jobs.sweep_models import Sweep, SweepMetric, SweepPruner, SweepSampler, SweepStatus
from studio.api_errors import Conflict
from studio.parsers import JSONParser

# --- shapes -------------------------------------------------------------------------------


class SweepSpecSerializer(serializers.Serializer):
    parameters = serializers.DictField(
        help_text="1 to 3 of " + ", ".join(space.PARAMETERS) + ': each {"values": [...]} '
        'or a range {"low": x, "high": y} (random and tpe only).'
    )
    budget = serializers.IntegerField(help_text=f"Runs at most, 1 to {space.MAX_BUDGET}.")
    metric = serializers.ChoiceField(choices=SweepMetric.choices, default=SweepMetric.VAL_LOSS)
    sampler = serializers.ChoiceField(choices=SweepSampler.choices, default=SweepSampler.TPE)
    pruner = serializers.ChoiceField(choices=SweepPruner.choices, default=SweepPruner.NONE)
    parallel = serializers.IntegerField(default=2, help_text="Runs queued at once, 1 to 4.")


class SweepCreateSerializer(JobDocumentSerializer):
    sweep = SweepSpecSerializer()


class BoardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField(allow_null=True)
    run = serializers.IntegerField()
    params = serializers.DictField()
    state = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    is_winner = serializers.BooleanField()
    note = serializers.CharField()
    job = serializers.UUIDField(allow_null=True)
    job_status = serializers.CharField(allow_null=True)
    progress_percent = serializers.IntegerField()
    job_url = serializers.CharField(allow_null=True)


class SweepSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=SweepStatus.choices)
    metric = serializers.ChoiceField(choices=SweepMetric.choices)
    direction = serializers.CharField()
    sampler = serializers.ChoiceField(choices=SweepSampler.choices)
    pruner = serializers.ChoiceField(choices=SweepPruner.choices)
    budget = serializers.IntegerField()
    parallel = serializers.IntegerField()
    parameters = serializers.DictField()
    waiting_reason = serializers.CharField()
    study_name = serializers.CharField()
    progress = serializers.DictField()
    winner = serializers.UUIDField(allow_null=True)
    winner_config_url = serializers.CharField(allow_null=True)
    playground_url = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    leaderboard = BoardRowSerializer(many=True)


def sweep_data(sweep: Sweep, request) -> dict:
    def link(name, **kwargs) -> str:
        return request.build_absolute_uri(reverse(name, kwargs=kwargs))

    winner = sweep.winner_id
    return {
        "id": sweep.pk, "name": sweep.name, "status": sweep.status, "metric": sweep.metric,
        "direction": "minimize" if sweep.lower_is_better else "maximize",
        "sampler": sweep.sampler, "pruner": sweep.pruner, "budget": sweep.budget,
        "parallel": sweep.parallel, "parameters": sweep.space,
        "waiting_reason": sweep.waiting_reason, "study_name": sweep.study_name,
        "progress": sweep_board.progress(sweep), "winner": winner,
        "winner_config_url": link("api-job-config", job_id=winner) if winner else None,
        "playground_url": link("playground") + f"?job={winner}" if winner else None,
        "created_at": sweep.created_at, "finished_at": sweep.finished_at,
        "leaderboard": [
            {
                "rank": row.rank, "run": row.run, "params": row.trial.params,
                "state": row.trial.state, "value": row.value, "is_winner": row.is_winner,
                "note": row.trial.note, "job": row.job.pk if row.job else None,
                "job_status": row.job.status if row.job else None,
                "progress_percent": row.job.progress_percent if row.job else 0,
                "job_url": link("api-job-detail", job_id=row.job.pk) if row.job else None,
            }
            for row in sweep_board.leaderboard(sweep)
        ],
    }  # fmt: skip


def read_create_body(user, data) -> tuple:
    """(JobDraft, SweepPlan) of a create body; ConfigError naming every bad field."""
    if not isinstance(data, dict):
        raise cfg.ConfigError([cfg.FieldError("config", "must be a mapping of sections.")])
    body = dict(data)
    spec = body.pop("sweep", None)
    body.pop("start", None)  # a sweep always starts
    document, _ = job_document(body)
    draft = lifecycle.check_start_job(user, document)
    return draft, space.read_sweep(spec, task=draft.model.task)


def field_errors(error: cfg.ConfigError) -> ValidationError:
    messages: dict[str, list[str]] = {}
    for field_error in error.errors:
        messages.setdefault(field_error.field, []).append(field_error.message)
    return ValidationError(messages)


# --- the viewset --------------------------------------------------------------------------


class SweepViewSet(viewsets.GenericViewSet):
    serializer_class = SweepSerializer
    parser_classes = (JSONParser,)
    lookup_url_kwarg = "sweep_id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, with no user
            return Sweep.objects.none()
        return Sweep.objects.for_user(self.request.user)

    @extend_schema(summary="Your sweeps, newest first (staff: everyone's)")
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([sweep_data(s, request) for s in page])

    @extend_schema(
        request=SweepCreateSerializer,
        responses={
            201: SweepSerializer,
            400: OpenApiResponse(description="The first bad field, dotted, in `error.field`."),
        },
        summary="Start a sweep: a job configuration, the parameters to vary and how to search",
    )
    def create(self, request):
        try:
            draft, plan = read_create_body(request.user, request.data)
        except cfg.ConfigError as error:
            raise field_errors(error) from None
        sweep = sweeps.create_sweep(request.user, draft, plan)
        return Response(sweep_data(sweep, request), status=status.HTTP_201_CREATED)

    @extend_schema(summary="A sweep: its status, leaderboard and winner")
    def retrieve(self, request, sweep_id=None):
        return Response(sweep_data(sweeps.access_sweep(request.user, sweep_id), request))

    @extend_schema(
        request=None,
        responses={200: SweepSerializer, 409: OpenApiResponse(description="It has ended.")},
        summary="Cancel a running sweep and its active runs; finished runs stay",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, sweep_id=None):
        sweep = sweeps.access_sweep(request.user, sweep_id)
        if not sweep.is_running:
            raise Conflict(f"The sweep has already ended ({sweep.get_status_display().lower()}).")
        return Response(sweep_data(sweeps.cancel_sweep(sweep), request))
