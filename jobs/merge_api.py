"""POST /api/v1/jobs/merge/: merge adapters of succeeded jobs into a new job
(jobs/services/merges.py says which merge and how).

Routed before the jobs router, whose `jobs/{job_id}/` would take "merge"
for an id. A bad merge answers 400 like a bad job configuration: the first
dotted field (`merge.sources`) in `error.field`, every problem in
`error.details`; another user's job is "no such job of yours".
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import config as cfg
from jobs.api import CONFIG_ERRORS, _field_errors
from jobs.serializers import FineTuneJobSerializer
from jobs.services import merges


class MergeRequestSerializer(serializers.Serializer):
    """The body's shape, for the schema; the merge service checks the values."""

    sources = serializers.ListField(
        child=serializers.CharField(),
        min_length=merges.MIN_SOURCES,
        max_length=merges.MAX_SOURCES,
        help_text="Ids of your succeeded LoRA or QLoRA jobs of one base model, in order; "
        "the first is the merge's parent and lends it its dataset.",
    )
    weights = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=merges.MAX_WEIGHT),
        required=False,
        help_text="One weight per source, more than 0 and at most 10. Empty: equal weights "
        "(1/n each for linear and dare_linear, which add; 1 each for ties and dare_ties, "
        "which average what they keep).",
    )
    combination = serializers.ChoiceField(
        choices=list(cfg.MERGE_COMBINATIONS.items()),
        default="linear",
        help_text="PEFT's weighted-adapter method: " + "; ".join(
            f"{key}: {label}" for key, label in cfg.MERGE_COMBINATIONS.items()
        ),
    )  # fmt: skip
    density = serializers.FloatField(
        default=0.5,
        help_text="Share of each adapter's values TIES and DARE keep (more than 0, at most 1).",
    )
    name = serializers.CharField(
        required=False, allow_blank=True, help_text="Empty: “Merge of <first> + <second>…”."
    )


class MergeJobView(APIView):
    @extend_schema(
        request=MergeRequestSerializer,
        responses={201: FineTuneJobSerializer, 400: CONFIG_ERRORS},
        summary="Merge the adapters of two or more of your succeeded jobs into a new job, "
        "queued for a training worker",
    )
    def post(self, request):
        body = request.data
        if hasattr(body, "dict"):  # a form: lists as repeated fields
            body = {
                **body.dict(), "sources": body.getlist("sources"),
                "weights": body.getlist("weights"),
            }  # fmt: skip
        if not isinstance(body, dict):
            raise _field_errors(
                cfg.ConfigError([cfg.FieldError("merge", "the body must be a JSON object.")])
            )
        try:
            draft = merges.check_merge(
                request.user,
                sources=body.get("sources"),
                weights=body.get("weights"),
                combination=body.get("combination", "linear"),
                density=body.get("density", 0.5),
                name=body.get("name", ""),
            )
        except cfg.ConfigError as error:
            raise _field_errors(error) from None
        job = merges.create_merge(request.user, draft)
        data = FineTuneJobSerializer(job, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED)
