"""The shape of GET /api/v1/usage/ (report.UserMonth.as_dict builds it) and of
a job's `usage` in the jobs API (job_usage.JobUsage.as_dict)."""

from rest_framework import serializers


class TokensSerializer(serializers.Serializer):
    prompt = serializers.IntegerField(help_text="Tokens read, every pane of every answer.")
    completion = serializers.IntegerField(help_text="Tokens generated.")
    total = serializers.IntegerField()


class UsageLimitsSerializer(serializers.Serializer):
    device_hours_per_month = serializers.FloatField(allow_null=True, help_text="null: none.")
    tokens_per_day = serializers.IntegerField(allow_null=True, help_text="null: none.")
    storage_bytes = serializers.IntegerField(allow_null=True, help_text="null: none.")


class JobMonthSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True, help_text="null: the job was deleted since.")
    name = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField(help_text="Attempts that ran in the month.")
    devices = serializers.ListField(child=serializers.CharField())
    device_seconds = serializers.FloatField(help_text="Inside the month.")
    cost = serializers.FloatField()


class UsageSerializer(serializers.Serializer):
    user = serializers.CharField()
    month = serializers.CharField(help_text="YYYY-MM, UTC.")
    start = serializers.DateTimeField(help_text="The month's first instant.")
    end = serializers.DateTimeField(help_text="The next month's first instant.")
    device_seconds = serializers.FloatField(help_text="Training device time inside the month.")
    device_hours = serializers.FloatField()
    cost = serializers.FloatField(help_text="At each attempt's price of a device-hour.")
    currency = serializers.CharField(help_text="ISO 4217 code, e.g. USD.")
    tokens = TokensSerializer(help_text="Served in the month (generations finished in it).")
    tokens_today = serializers.IntegerField(help_text="Served since midnight UTC.")
    storage_bytes = serializers.IntegerField(help_text="Stored now, whatever the month.")
    limits = UsageLimitsSerializer()
    jobs = JobMonthSerializer(many=True)


class JobUsageSerializer(serializers.Serializer):
    device_seconds = serializers.FloatField(
        help_text="Training device time of every attempt (a running one: to its last beat)."
    )
    cost = serializers.FloatField(
        help_text="At the price of a device-hour when each attempt started; 0 when free."
    )
    currency = serializers.CharField(help_text="ISO 4217 code, e.g. USD.")
