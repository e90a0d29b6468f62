"""The "Operators" group: exactly what an operator needs in the admin.

Frozen here, as a migration must be; README.md's Operators section lists the
same. An app that registers a model in the admin later grants the group what
it needs on it in a migration of its own (studio/operator_permissions.py).

- view: every model in the admin (users and groups included: an operator
  finds whose work to stop; axes' records: why a login is locked).
- jobs: change (the Cancel and Retry actions; the name is the only field
  editable) and delete (Delete with files, through lifecycle.delete_job).
- datasets: delete (through datasets_app.services.delete_dataset; every field
  is read-only, so no change).
- API tokens: delete (Revoke) and change (a token's name, expiry and its own
  rate limit, which only an operator may raise).
- the model catalog: add and change (operators add models; never delete, jobs
  name them: `enabled` hides one).
- axes' access attempts: delete (lifting a lockout before it ends).
- users: the custom "deactivate" alone (the action "Deactivate and cancel
  their work"); not change, which would let an operator make themselves a
  superuser, nor any group management: making operators is a superuser's
  `manage.py make_operator`.
"""

from django.db import migrations

from studio.operator_permissions import grant_operators

PERMISSIONS = {
    "auth.user": ("view",),
    "auth.group": ("view",),
    "axes.accessattempt": ("view", "delete"),
    "axes.accesslog": ("view",),
    "axes.accessfailurelog": ("view",),
    "studio.apitoken": ("view", "change", "delete"),
    "datasets.dataset": ("view", "delete"),
    "jobs.catalogmodel": ("view", "add", "change"),
    "jobs.finetunejob": ("view", "change", "delete"),
    "jobs.jobevent": ("view",),
    "jobs.checkpoint": ("view",),
    "jobs.metricpoint": ("view",),
    "serving.generation": ("view",),
    "serving.vote": ("view",),
    "serving.evaluation": ("view",),
}
# A permission of our own on Django's user model: (model, codename, name).
DEACTIVATE = ("auth.user", "deactivate_user", "Can deactivate users and cancel their work")


class Migration(migrations.Migration):
    dependencies = [
        ("studio", "0002_token_rate_limit"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("axes", "0010_accessattemptexpiration"),
        ("datasets", "0003_skip_invalid_rows"),
        ("jobs", "0005_event_metric_export_choices"),
        ("serving", "0003_error_detail"),
    ]

    operations = [migrations.RunPython(*grant_operators(PERMISSIONS, custom=(DEACTIVATE,)))]
