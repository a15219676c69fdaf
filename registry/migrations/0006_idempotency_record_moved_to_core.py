# The stored answers of idempotent writes moved to core (one mechanism for every app's API): the answers
# still within their time to live are copied over, so a retry across the upgrade is still replayed.

from django.db import migrations


def copy_to_core(apps, schema_editor):
    old = apps.get_model("registry", "IdempotencyRecord")
    new = apps.get_model("core", "IdempotencyRecord")
    new.objects.bulk_create(
        new(user_id=r.user_id, key=r.key, fingerprint=r.fingerprint, status_code=r.status_code,
            body=r.body, created_at=r.created_at)
        for r in old.objects.all()
    )


def copy_back(apps, schema_editor):
    old = apps.get_model("registry", "IdempotencyRecord")
    new = apps.get_model("core", "IdempotencyRecord")
    old.objects.bulk_create(
        old(user_id=r.user_id, key=r.key, fingerprint=r.fingerprint, status_code=r.status_code,
            body=r.body, created_at=r.created_at)
        for r in new.objects.all()
    )


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0005_config_history'),
        ('core', '0002_idempotency_record'),
    ]

    operations = [
        migrations.RunPython(copy_to_core, copy_back),
        migrations.DeleteModel(
            name='IdempotencyRecord',
        ),
    ]
