"""Granting the "Operators" group permissions from a migration.

The group is made by studio/migrations/0003_operators_group.py. An app that
registers a model in the admin grants operators what they need on it in a
migration of its own, which depends on that one:

    from studio.operator_permissions import grant_operators

    operations = [migrations.RunPython(*grant_operators({"quotas.quotaoverride": ("view",)}))]

It uses only the migration's historical models, so a migration that calls it
means the same thing whenever it runs.
"""

OPERATORS_GROUP = "Operators"


def make_permission(apps, label: str, codename: str, name: str):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    app_label, model = label.split(".")
    content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename=codename, defaults={"name": name}
    )
    return permission


def operator_permissions(apps, permissions: dict[str, tuple[str, ...]]) -> list:
    """The Permission rows of {"app.model": ("view", "change", …)}, made when missing.

    Django makes default permissions after all migrations ran (post_migrate):
    on a new database they do not exist yet here, so they are made, named as
    Django names them; its own pass then finds them."""
    found = []
    for label, actions in permissions.items():
        verbose_name = apps.get_model(label)._meta.verbose_name_raw
        model = label.split(".")[1]
        for action in actions:
            found.append(
                make_permission(apps, label, f"{action}_{model}", f"Can {action} {verbose_name}")
            )
    return found


# Every grant a migration made, in the order the migrations were loaded:
# `restore_operators_group` replays them.
GRANTS: list[tuple[dict, tuple]] = []


def grant_operators(permissions: dict[str, tuple[str, ...]], custom: tuple = ()):
    """RunPython's (forward, backward) pair that adds `permissions` (and `custom`
    ones: (model label, codename, name)) to the group and takes them away again."""
    GRANTS.append((permissions, custom))
    return _grant(permissions, custom)


def _grant(permissions: dict, custom: tuple):
    def granted(apps) -> list:
        return [*operator_permissions(apps, permissions),
                *(make_permission(apps, *permission) for permission in custom)]  # fmt: skip

    def forward(apps, schema_editor):
        group, _ = apps.get_model("auth", "Group").objects.get_or_create(name=OPERATORS_GROUP)
        group.permissions.add(*granted(apps))

    def backward(apps, schema_editor):
        group = apps.get_model("auth", "Group").objects.filter(name=OPERATORS_GROUP).first()
        if group is not None:
            group.permissions.remove(*granted(apps))

    return forward, backward


def restore_operators_group() -> None:
    """Make the group again as the migrations made it, when it is missing (a
    test database emptied by a transactional test loses migrations' rows)."""
    from django.apps import apps
    from django.contrib.auth.models import Group
    from django.db.migrations.loader import MigrationLoader

    if Group.objects.filter(name=OPERATORS_GROUP).exists():
        return
    if not GRANTS:
        MigrationLoader(None)  # imports every migration, which registers its grants
    for permissions, custom in GRANTS:
        forward, _ = _grant(permissions, custom)
        forward(apps, None)
