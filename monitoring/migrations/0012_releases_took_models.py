from django.db import migrations


class Migration(migrations.Migration):
    """CanaryPlan, CanaryAnalysis, PreflightRun and QuantizationRun moved to releases with their tables
    (releases 0001 names them): removed from monitoring's state only; no table is dropped or copied."""

    dependencies = [
        ("monitoring", "0011_webhookattempt"),
        ("releases", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="CanaryAnalysis"),
                migrations.DeleteModel(name="CanaryPlan"),
                migrations.DeleteModel(name="PreflightRun"),
                migrations.DeleteModel(name="QuantizationRun"),
            ],
        ),
    ]
