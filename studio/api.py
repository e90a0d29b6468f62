"""The native REST API's account endpoints: who am I, my password, and my API tokens."""

from django.utils.cache import add_never_cache_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from studio.api_errors import Conflict
from studio.models import ApiToken
from studio.serializers import (
    CreatedTokenSerializer,
    MeSerializer,
    NewTokenSerializer,
    PasswordChangedSerializer,
    PasswordChangeSerializer,
    TokenSerializer,
)
from studio.services.accounts import PasswordRefused, change_password, check_current_password
from studio.services.tokens import (
    TooManyTokens,
    access_token,
    create_token,
    expiry_after,
    revoke_token,
)


def _request_token(request) -> ApiToken | None:
    return request.auth if isinstance(request.auth, ApiToken) else None


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="Who the request is authenticated as")
    def get(self, request):
        token = _request_token(request)
        data = {
            "username": request.user.get_username(),
            "email": request.user.email,
            "is_staff": request.user.is_staff,
            "auth": "token" if token else "session",
            "token": token,
        }
        return Response(MeSerializer(data).data)


class LockedOut(exceptions.APIException):
    """Too many failed logins for this username or address (django-axes)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"


class PasswordView(APIView):
    @extend_schema(
        request=PasswordChangeSerializer,
        responses={
            200: PasswordChangedSerializer,
            400: OpenApiResponse(
                description="The current password is wrong, or the new one breaks a "
                "password rule: `error.field` names which."
            ),
            429: OpenApiResponse(
                description="Locked out by too many failed logins (TAILOR_LOGIN_LOCKOUT_MINUTES)."
            ),
        },
        summary="Change your password: every session of yours ends (their live pages close)",
    )
    def post(self, request):
        form = PasswordChangeSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            # Django's request: django-axes records the failure, and keeps the lock, on it.
            check_current_password(request._request, request.user, data["current_password"])
        except PasswordRefused as refused:
            if refused.code == "locked_out":
                raise LockedOut(refused.message) from None
            raise exceptions.ValidationError(
                {"current_password": [exceptions.ErrorDetail(refused.message, refused.code)]}
            ) from None
        changed = change_password(
            request._request,
            request.user,
            data["new_password"],
            revoke_tokens=data["revoke_tokens"],
        )
        return Response(PasswordChangedSerializer(changed).data)


@extend_schema_view(
    destroy=extend_schema(
        parameters=[OpenApiParameter("token_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={204: None},
        summary="Revoke one of your tokens: requests carrying it fail from now on",
    )
)
class TokenViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = TokenSerializer
    lookup_url_kwarg = "token_id"
    lookup_value_regex = (
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    )

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, with no user
            return ApiToken.objects.none()
        return ApiToken.objects.for_user(self.request.user)

    @extend_schema(summary="Your API tokens, newest first (expired ones too, until revoked)")
    def list(self, request):
        return super().list(request)

    @extend_schema(
        request=NewTokenSerializer,
        responses={
            201: CreatedTokenSerializer,
            409: OpenApiResponse(
                description="You hold TAILOR_MAX_TOKENS_PER_USER tokens already: revoke one first."
            ),
        },
        summary="Create a token; its secret is in this answer only",
    )
    def create(self, request):
        form = NewTokenSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            new = create_token(
                request.user,
                data["name"],
                expires_at=expiry_after(data["expires_in_days"], made_with=_request_token(request)),
                rate_limit_per_minute=data["rate_limit_per_minute"],
            )
        except TooManyTokens as refused:
            raise Conflict(refused.message) from None
        body = {**TokenSerializer(new.token).data, "secret": new.secret}
        response = Response(body, status=status.HTTP_201_CREATED)
        # The secret must not be kept by a browser's or a proxy's cache.
        add_never_cache_headers(response)
        return response

    def destroy(self, request, token_id=None):
        revoke_token(access_token(request.user, token_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
