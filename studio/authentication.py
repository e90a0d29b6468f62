"""DRF authentication with personal API tokens.

Both `Authorization: Bearer <token>` (what OpenAI clients send) and
`Authorization: Token <token>` (DRF's habit) are accepted.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from studio.services.tokens import TokenRefused, authenticate_secret

KEYWORDS = (b"bearer", b"token")


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer <token>' or 'Token <token>'."
            )
        try:
            secret = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "The token contains invalid characters."
            ) from None
        try:
            return authenticate_secret(secret)
        except TokenRefused as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None

    def authenticate_header(self, request):
        # Makes DRF answer 401 (with this challenge) rather than 403.
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes the token header in the OpenAPI schema."""

    target_class = "studio.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A personal API token (tlr_…)."}
