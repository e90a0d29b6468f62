from django.db import migrations


def seed(apps, schema_editor):
    from jobs.services.catalog import seed_catalog

    seed_catalog(apps.get_model("jobs", "CatalogModel"))


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
