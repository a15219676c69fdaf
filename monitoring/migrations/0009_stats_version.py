"""Image statistics carry the version of their measurement: rows made before version 2 (JPEGs decoded at the
size the model needs) are version 1, new ones take serving.preprocessing.STATS_VERSION."""

from django.db import migrations, models

import monitoring.models

HELP = "how the image statistics were measured (never mixed)"


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0008_alert_evidence"),
    ]

    operations = [
        operation
        for model_name in ("baseline", "metricwindow")
        for operation in (
            migrations.AddField(
                model_name=model_name,
                name="stats_version",
                field=models.PositiveSmallIntegerField(default=1, help_text=HELP),
            ),
            migrations.AlterField(
                model_name=model_name,
                name="stats_version",
                field=models.PositiveSmallIntegerField(
                    default=monitoring.models.stats_version_now, help_text=HELP
                ),
            ),
        )
    ]
