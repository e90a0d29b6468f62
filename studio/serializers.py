"""Shapes of the native API's account endpoints (/api/v1/me/, /api/v1/tokens/)."""

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from studio.models import ApiToken
from studio.services.rate_limits import limit_for, personal_limit_problem
from studio.services.tokens import DEFAULT_EXPIRY_DAYS, MAX_EXPIRY_DAYS


class TokenSerializer(serializers.ModelSerializer):
    expired = serializers.BooleanField(
        source="is_expired", help_text="Expired tokens are refused, and listed until revoked."
    )
    effective_rate_limit_per_minute = serializers.SerializerMethodField(
        help_text="The limit in force: the token's own, else the studio's; 0 is unlimited."
    )

    class Meta:
        model = ApiToken
        fields = (
            "id",
            "name",
            "prefix",
            "created_at",
            "last_used_at",
            "expires_at",
            "expired",
            "rate_limit_per_minute",
            "effective_rate_limit_per_minute",
        )
        read_only_fields = fields
        extra_kwargs = {  # noqa: RUF012  (DRF reads it; never mutated)
            "prefix": {"help_text": "The secret's first characters, to tell tokens apart."},
            "last_used_at": {"help_text": "Recorded at most once a minute."},
            "expires_at": {"help_text": "Null: never."},
            "rate_limit_per_minute": {
                "help_text": "Requests a minute; null: the studio's limit; 0: unlimited."
            },
        }

    @extend_schema_field(serializers.IntegerField())
    def get_effective_rate_limit_per_minute(self, token: ApiToken) -> int:
        return limit_for(token)


class NewTokenSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the token is for.")
    expires_in_days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        allow_null=True,
        default=DEFAULT_EXPIRY_DAYS,
        help_text=f"Days until the token stops working; null: never (default "
        f"{DEFAULT_EXPIRY_DAYS}). A token created with a token expires no later than it.",
    )
    rate_limit_per_minute = serializers.IntegerField(
        min_value=1,
        allow_null=True,
        default=None,
        help_text="Requests a minute, at most the studio's limit; null: the studio's limit.",
    )

    def validate_rate_limit_per_minute(self, limit: int | None) -> int | None:
        if limit is not None and (problem := personal_limit_problem(limit)):
            raise serializers.ValidationError(problem, code="max_value")
        return limit


class CreatedTokenSerializer(TokenSerializer):
    secret = serializers.CharField(
        help_text="The token itself, shown this once: only its hash is stored."
    )

    class Meta(TokenSerializer.Meta):
        fields = (*TokenSerializer.Meta.fields, "secret")
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    is_staff = serializers.BooleanField(help_text="Operators are staff.")
    auth = serializers.ChoiceField(choices=["token", "session"])
    token = TokenSerializer(allow_null=True, help_text="The token used, if any.")


# Far past any passphrase or password manager's, and it bounds the work of
# checking and hashing one.
MAX_PASSWORD_LENGTH = 4096


class PasswordChangeSerializer(serializers.Serializer):
    current_password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        max_length=MAX_PASSWORD_LENGTH,
        help_text="Your password now. A wrong one counts as a failed login: "
        "TAILOR_LOGIN_FAILURE_LIMIT of them lock the username, as on /login/.",
    )
    new_password = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        max_length=MAX_PASSWORD_LENGTH,
        help_text="Checked by the studio's password rules (length, not common, not all digits, "
        "not like your username).",
    )
    revoke_tokens = serializers.BooleanField(
        default=False,
        help_text="Also revoke every API token of yours, the one sending this request too.",
    )

    def validate_new_password(self, password: str) -> str:
        try:
            password_validation.validate_password(password, self.context["request"].user)
        except DjangoValidationError as refused:
            raise serializers.ValidationError(
                [ErrorDetail(e.messages[0], code=e.code or "invalid") for e in refused.error_list]
            ) from None
        return password


class PasswordChangedSerializer(serializers.Serializer):
    tokens_revoked = serializers.IntegerField(
        help_text="API tokens revoked (0 unless revoke_tokens was true)."
    )
