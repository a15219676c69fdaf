"""The database cache's table (CACHES["lockout"] on the embedded defaults), made by `migrate` so every
way the project is deployed has it; with Redis configured there is nothing to make."""

from django.core.management import call_command
from django.db import migrations


def cache_table_create(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies: list[tuple[str, str]] = []

    operations = [migrations.RunPython(cache_table_create, migrations.RunPython.noop)]
