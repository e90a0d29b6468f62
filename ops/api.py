"""GET /api/v1/ops/: the operations page's data, for staff tokens and sessions."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from ops import snapshot

OpsSerializer = inline_serializer(
    "Operations",
    {
        name: serializers.JSONField(help_text=help_text)
        for name, help_text in {
            "queues": "Per Celery queue: messages waiting, rows waiting by kind, the oldest's "
            "age; the queued training jobs in order (capped, with the number left out).",
            "workers": "Every worker's last heartbeat (host, queues, concurrency, uptime, torch "
            "and CUDA versions, GPUs, memory) and what it runs now; `reporting` false: stopped.",
            "training": "Running jobs with owner, progress, tokens/s and ETA; recent failures.",
            "serving": "Per inference or evaluation worker: the models it holds loaded.",
            "maintenance": "The reaper's and the storage survey's last run, and whether stale.",
            "storage": "The last survey of the media folder (bytes by kind, biggest users) and "
            "the disk's free bytes.",
            "jobs_by_state": "Fine-tuning jobs by state.",
        }.items()
    },
)


class OpsView(APIView):
    permission_classes = (IsAdminUser,)

    @extend_schema(
        responses={200: OpsSerializer, 403: OpenApiTypes.OBJECT},
        summary="The fleet: queues, workers, training, serving, maintenance, storage (staff)",
    )
    def get(self, request):
        return Response(snapshot.everything())
