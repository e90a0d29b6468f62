"""Operators set the price of a device-hour (view, add, change, delete) and
read the device time each attempt used (view: the training workers write it);
studio/operator_permissions.py explains the grants."""

from django.db import migrations

from studio.operator_permissions import grant_operators


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0001_device_use_and_prices"),
        ("studio", "0003_operators_group"),
    ]

    operations = [
        migrations.RunPython(
            *grant_operators(
                {
                    "usage.deviceprice": ("view", "add", "change", "delete"),
                    "usage.deviceuse": ("view",),
                }
            )
        ),
    ]
