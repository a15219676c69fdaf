from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

    def ready(self) -> None:
        from registry.evidence import evidence_provider

        from .canary import canary_findings

        evidence_provider(canary_findings)  # the approver sees the canary's verdict and numbers
