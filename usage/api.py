"""GET /api/v1/usage/?month=YYYY-MM: the caller's month (staff: `?user=NAME`)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from usage.serializers import UsageSerializer
from usage.services import report
from usage.services.report import BadMonth, Month


class UsageView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("month", str, description="YYYY-MM (UTC); default: this month."),
            OpenApiParameter("user", str, description="Staff only: whose usage (a username)."),
        ],
        responses={200: UsageSerializer, 400: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT},
        summary="A month's training device time, cost, tokens served and storage",
    )
    def get(self, request):
        user = report.whose(request.user, request.query_params.get("user"))
        try:
            month = Month.parse(request.query_params.get("month"))
        except BadMonth as error:
            raise ValidationError({"month": [error.field_message]}) from None
        return Response(UsageSerializer(report.for_user(user, month).as_dict()).data)
