"""Operators set quotas: the Operators group may view, add, change and
delete the overrides (studio/operator_permissions.py explains the grants)."""

from django.db import migrations

from studio.operator_permissions import grant_operators


class Migration(migrations.Migration):
    dependencies = [
        ("quotas", "0001_initial"),
        ("studio", "0003_operators_group"),
    ]

    operations = [
        migrations.RunPython(
            *grant_operators({"quotas.quotaoverride": ("view", "add", "change", "delete")})
        ),
    ]
