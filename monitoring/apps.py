from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

    def ready(self) -> None:
        from serving.sample_store import purge_listener

        from . import alert_evaluation, tasks
        from .drift_evidence import store_purged

        # Purging a model's stored inputs purges the thumbnails its alerts kept of them.
        purge_listener(store_purged)
        # Alert changes are posted to webhooks by a Celery task; evaluation knows only this callable.
        alert_evaluation.webhook_sender(tasks.webhook_enqueue)
