"""Preference tuning and merges: a job's objective and parent, DPO's metrics."""

import django.db.models.deletion
from django.db import migrations, models


def objectives_of_existing_jobs(apps, schema_editor):
    FineTuneJob = apps.get_model("jobs", "FineTuneJob")
    FineTuneJob.objects.filter(task="sequence-classification").update(objective="classification")


class Migration(migrations.Migration):
    dependencies = [("jobs", "0010_sweeps")]

    operations = [
        migrations.AddField(
            model_name="finetunejob",
            name="objective",
            field=models.CharField(default="supervised", max_length=16),
        ),
        migrations.AddField(
            model_name="finetunejob",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="children",
                to="jobs.finetunejob",
            ),
        ),
        migrations.AddField(
            model_name="metricpoint",
            name="reward_margin",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="metricpoint",
            name="preference_accuracy",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.RunPython(objectives_of_existing_jobs, migrations.RunPython.noop),
    ]
