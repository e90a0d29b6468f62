"""GET /api/v1/jobs/compare/?ids=a,b: the Compare page's data, for scripts
(jobs/services/compare.py says what it holds and refuses).

Routed before the jobs router, whose `jobs/{job_id}/` would take "compare"
for an id. Bad ids answer 400 with `error.field` "ids" and the service's
code (`too_few`, `too_many`, `malformed`, `duplicate`); an id of a job the
caller cannot see answers the 404 of a missing one.
"""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.models import JobStatus
from jobs.services import compare as comparing


class ComparedPointSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    loss = serializers.FloatField()
    tokens = serializers.IntegerField(help_text="Tokens seen by this step (0: not counted).")
    elapsed = serializers.FloatField(help_text="Seconds since the attempt started.")


class ComparedDatasetSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    rows = serializers.IntegerField(allow_null=True, help_text="Rows the job planned on.")
    revision = serializers.IntegerField(
        allow_null=True, help_text="The revision whose rows the job trained on (null: not kept)."
    )


class ComparedRunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=JobStatus.values)
    base_model = serializers.CharField(help_text="A catalog model id.")
    method = serializers.CharField()
    dataset = ComparedDatasetSerializer()
    figures = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        help_text="Final figures once it finished (train_loss, val_loss, best_val_loss, "
        "runtime_seconds, trained_tokens, tokens_per_second, …); so far, before. "
        "device_seconds from the usage ledger; cost where a price is set.",
    )
    evaluation = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        allow_null=True,
        help_text="The fine-tune's figures in its newest succeeded evaluation (accuracy, "
        "macro_f1, exact_match, rouge_l, val_loss, perplexity, rows); null if none.",
    )
    runtime_seconds = serializers.FloatField(allow_null=True)
    tokens_per_second = serializers.FloatField(allow_null=True)
    train = ComparedPointSerializer(many=True, help_text="Training loss by step.")
    validation = ComparedPointSerializer(many=True, help_text="Validation loss by step.")


class DifferenceSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="A dotted configuration path, or data.dataset.")
    values = serializers.ListField(
        child=serializers.JSONField(allow_null=True), help_text="One per run, in its order."
    )


class SampleAnswerSerializer(serializers.Serializer):
    answer = serializers.CharField()
    exact = serializers.BooleanField(help_text="Whether it matched the reference.")


class SampleSerializer(serializers.Serializer):
    prompt = serializers.CharField()
    reference = serializers.CharField()
    answers = serializers.ListField(
        child=SampleAnswerSerializer(allow_null=True),
        help_text="One per run, in its order; null where it did not answer the prompt.",
    )


class ComparisonSerializer(serializers.Serializer):
    runs = ComparedRunSerializer(many=True)
    differences = DifferenceSerializer(many=True)
    samples = SampleSerializer(
        many=True, help_text="Held-out prompts two or more runs' evaluations answered."
    )


def comparison_as_dict(comparison: comparing.Comparison) -> dict:
    runs = []
    for run in comparison.runs:
        job = run.job
        runs.append(
            {
                "id": job.pk,
                "name": job.name,
                "status": job.status,
                "base_model": job.base_model_id,
                "method": job.method,
                "dataset": {
                    "id": job.dataset_id,
                    "name": job.dataset.name,
                    "rows": (job.plan or {}).get("rows"),
                    "revision": job.dataset_revision,
                },
                "figures": run.figures,
                "evaluation": run.evaluation_figures or None,
                "runtime_seconds": run.figures.get("runtime_seconds"),
                "tokens_per_second": run.figures.get("tokens_per_second"),
                "train": [vars(p) for p in run.train],
                "validation": [vars(p) for p in run.validation],
            }
        )
    differences = [{"field": d.field, "values": d.values} for d in comparison.differences]
    samples = [
        {
            "prompt": row.prompt,
            "reference": row.reference,
            "answers": [
                None if answer is None else {"answer": answer[0], "exact": answer[1]}
                for answer in row.answers
            ],
        }
        for row in comparing.samples(comparison.runs)
    ]
    return {"runs": runs, "differences": differences, "samples": samples}


class JobCompareView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ids",
                str,
                required=True,
                description="2 to 6 job ids, comma-separated (or the parameter repeated).",
            ),
        ],
        responses={
            200: ComparisonSerializer,
            400: OpenApiResponse(
                description="Too few, too many, malformed or repeated ids: `error.field` "
                "is `ids`, `error.code` says which."
            ),
            404: OpenApiResponse(description="An id names no job of yours."),
        },
        summary="Jobs side by side: loss curves, figures and the settings that differ",
    )
    def get(self, request):
        try:
            comparison = comparing.compare(request.user, request.query_params.getlist("ids"))
        except comparing.CompareError as refused:
            raise ValidationError({refused.field: [refused.message]}, code=refused.code) from None
        return Response(ComparisonSerializer(comparison_as_dict(comparison)).data)
