"""The native REST API's account endpoints."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from studio.models import ApiToken


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    is_staff = serializers.BooleanField(help_text="Operators are staff.")
    auth = serializers.ChoiceField(choices=["token", "session"])
    token = serializers.DictField(allow_null=True, help_text="The token used, if any.")


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="Who the request is authenticated as")
    def get(self, request):
        token = request.auth if isinstance(request.auth, ApiToken) else None
        data = {
            "username": request.user.get_username(),
            "email": request.user.email,
            "is_staff": request.user.is_staff,
            "auth": "token" if token else "session",
            "token": {"name": token.name, "prefix": token.prefix} if token else None,
        }
        return Response(MeSerializer(data).data)
