"""/api/v1/evaluations/ and /api/v1/generations/: the playground and evaluations, for scripts.

A generation is asynchronous: POST stores and queues it (201, status
`queued`), and GET answers its status, then every model's result once it has
finished. Clients that want tokens as they come use the OpenAI-compatible
`/v1/chat/completions` with `stream: true`, or the playground's websocket.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from jobs.models import FineTuneJob
from jobs.services import lifecycle
from serving.models import (
    Evaluation,
    EvaluationStatus,
    EvaluationTrigger,
    Generation,
    GenerationSource,
    GenerationStatus,
)
from serving.serializers import (
    EvaluationRequestSerializer,
    EvaluationSerializer,
    GenerationRequestSerializer,
    GenerationSerializer,
    VoteRequestSerializer,
    VoteSerializer,
)
from serving.services import evaluations, generations
from serving.services.generations import GenerationRequest, InvalidRequest
from serving.services.names import UnknownModel
from studio.api_errors import Conflict
from studio.api_params import one_of
from studio.parsers import JSONParser
from studio.services.access import one_or_404

PARAMS = ("max_new_tokens", "temperature", "top_p", "seed", "stop")


def _invalid(exc: InvalidRequest) -> ValidationError:
    return ValidationError({field: [message] for field, message in exc.errors.items()})


# --- evaluations -----------------------------------------------------------------------------


class EvaluationViewSet(viewsets.GenericViewSet):
    serializer_class = EvaluationSerializer
    parser_classes = (JSONParser,)
    lookup_url_kwarg = "evaluation_id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, with no user
            return Evaluation.objects.none()
        jobs = FineTuneJob.objects.for_user(self.request.user)
        return Evaluation.objects.filter(job__in=jobs).select_related("job")

    @extend_schema(
        parameters=[
            OpenApiParameter("job", OpenApiTypes.UUID, description="Of this job only."),
            OpenApiParameter("status", str, enum=EvaluationStatus.values),
        ],
        summary="Evaluations of your jobs (base vs fine-tuned), newest first",
    )
    def list(self, request):
        found = self.get_queryset().order_by("-created_at")
        if job := request.query_params.get("job"):
            found = found.filter(job_id=_uuid(job, "job"))
        if wanted := one_of(request.query_params, "status", EvaluationStatus.values):
            found = found.filter(status=wanted)
        page = self.paginate_queryset(found)
        staff = request.user.is_staff
        return self.get_paginated_response(
            [evaluations.evaluation_summary(e, staff=staff) for e in page]
        )

    @extend_schema(
        parameters=[OpenApiParameter("evaluation_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        summary="An evaluation: progress, metrics of base and fine-tuned, and the samples",
    )
    def retrieve(self, request, evaluation_id=None):
        found = one_or_404(self.get_queryset(), evaluation_id, "No such evaluation.")
        return Response(evaluations.evaluation_summary(found, staff=request.user.is_staff))

    @extend_schema(
        request=EvaluationRequestSerializer,
        responses={
            202: EvaluationSerializer,
            409: OpenApiResponse(description="The job cannot be evaluated; the message says why."),
        },
        summary="Evaluate a succeeded job again (an evaluation already under way is returned)",
    )
    def create(self, request):
        form = EvaluationRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = lifecycle.access_job(request.user, form.validated_data["job"])
        try:
            evaluation = evaluations.request_evaluation(
                job,
                trigger=EvaluationTrigger.MANUAL,
                sample_size=form.validated_data.get("sample_size"),
            )
        except evaluations.EvaluationRefused as refused:
            raise Conflict(refused.message) from None
        return Response(
            evaluations.evaluation_summary(evaluation, staff=request.user.is_staff),
            status=status.HTTP_202_ACCEPTED,
        )


def _uuid(value, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError({field: ["Must be an id (a UUID)."]}) from None


# --- generations ---------------------------------------------------------------------------


def generation_payload(generation: Generation, viewer) -> dict:
    """A generation as `viewer` may read it: the `error_detail`s (the exceptions
    behind its errors) for staff only."""
    staff = viewer.is_staff
    results = generation.results or []
    panes = []
    for index, pane in enumerate(generation.panes):
        result = results[index] if index < len(results) else {}
        panes.append(
            {
                "model": pane["model"],
                "label": pane["label"],
                "text": result.get("text") if result else None,
                "label_probabilities": result.get("probabilities"),
                "predicted_label": result.get("label"),
                "prompt_tokens": result.get("prompt_tokens"),
                "completion_tokens": result.get("completion_tokens"),
                "finish_reason": result.get("finish_reason"),
                "first_token_seconds": result.get("first_token_seconds"),
                "seconds": result.get("seconds"),
                "tokens_per_second": result.get("tokens_per_second"),
                "error": result.get("error"),
            }
        )
        if staff and result.get("error_detail"):
            panes[-1]["error_detail"] = result["error_detail"]
    payload = {
        "id": str(generation.pk),
        "status": generation.status,
        "source": generation.source,
        "task": generation.task,
        "models": generation.model_names,
        "messages": generation.messages,
        "text": generation.text,
        "params": generation.params,
        "results": panes if results else [],
        "error": generation.error or None,
        "created_at": generation.created_at,
        "started_at": generation.started_at,
        "finished_at": generation.finished_at,
    }
    if staff and generation.error_detail:
        payload["error_detail"] = generation.error_detail
    return payload


def _settle_unstarted(generation: Generation) -> Generation:
    """A request no worker took within the start timeout has failed: say so."""
    timeout = timedelta(seconds=settings.TAILOR_GENERATION_START_TIMEOUT_SECONDS)
    if generation.status == GenerationStatus.QUEUED and (
        timezone.now() - generation.created_at > timeout
    ):
        generations.give_up_unstarted(generation.pk)
        generation.refresh_from_db()
    return generation


class GenerationViewSet(viewsets.GenericViewSet):
    serializer_class = GenerationSerializer
    parser_classes = (JSONParser,)
    lookup_url_kwarg = "generation_id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, with no user
            return Generation.objects.none()
        return Generation.objects.for_user(self.request.user)

    def _get(self, generation_id) -> Generation:
        return _settle_unstarted(generations.access_generation(self.request.user, generation_id))

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=GenerationStatus.values),
            OpenApiParameter("source", str, enum=GenerationSource.values),
            OpenApiParameter("model", str, description="Generations that ran this model."),
        ],
        responses=GenerationSerializer(many=True),
        summary="Your generations (playground runs and API completions), newest first",
    )
    def list(self, request):
        found = self.get_queryset().order_by("-created_at")
        params = request.query_params
        if wanted := one_of(params, "status", GenerationStatus.values):
            found = found.filter(status=wanted)
        if source := one_of(params, "source", GenerationSource.values):
            found = found.filter(source=source)
        if model := params.get("model"):
            # Panes are JSON; a containment lookup is not on SQLite, so match the text.
            found = found.filter(Q(panes__icontains=f'"model": "{model}"'))
        page = self.paginate_queryset(found)
        data = [generation_payload(_settle_unstarted(g), request.user) for g in page]
        return self.get_paginated_response(GenerationSerializer(data, many=True).data)

    @extend_schema(
        request=GenerationRequestSerializer,
        responses={201: GenerationSerializer},
        summary="Run one prompt on a base model and fine-tuned models of it, side by side",
    )
    def create(self, request):
        form = GenerationRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        ask = GenerationRequest(
            models=data["models"],
            messages=[dict(m) for m in data["messages"]] if "messages" in data else None,
            text=data.get("text", ""),
            params={key: data[key] for key in PARAMS if key in data},
        )
        try:
            checked = generations.check_request(request.user, ask)
        except UnknownModel as unknown:
            raise ValidationError({"models": [unknown.message]}) from None
        except InvalidRequest as exc:
            raise _invalid(exc) from None
        generation = generations.create_generation(
            request.user, checked, source=GenerationSource.API
        )
        generations.dispatch(generation.pk)
        return Response(
            GenerationSerializer(generation_payload(generation, request.user)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        parameters=[OpenApiParameter("generation_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        summary="A generation: its status, then each model's answer and speed",
    )
    def retrieve(self, request, generation_id=None):
        found = self._get(generation_id)
        return Response(GenerationSerializer(generation_payload(found, request.user)).data)

    @extend_schema(
        parameters=[OpenApiParameter("generation_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        request=None,
        responses={200: GenerationSerializer, 409: OpenApiResponse(description="Finished.")},
        summary="Stop a generation that is queued or running",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, generation_id=None):
        generation = self._get(generation_id)
        if generation.status not in (GenerationStatus.QUEUED, GenerationStatus.RUNNING):
            raise Conflict(f"The generation has already finished ({generation.status}).")
        generation = generations.cancel_generation(generation)
        return Response(GenerationSerializer(generation_payload(generation, request.user)).data)

    @extend_schema(
        parameters=[OpenApiParameter("generation_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        request=VoteRequestSerializer,
        responses={200: VoteSerializer},
        summary="Say which of two answers was better (a, b or tie); voting again changes it",
    )
    @action(detail=True, methods=["post"])
    def vote(self, request, generation_id=None):
        generation = self._get(generation_id)
        form = VoteRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            vote = generations.record_vote(
                request.user, generation, data["model_a"], data["model_b"], data["winner"]
            )
        except InvalidRequest as exc:
            if generation.status != GenerationStatus.SUCCEEDED:
                raise Conflict(exc.message) from None
            raise _invalid(exc) from None
        return Response(VoteSerializer(vote).data)
