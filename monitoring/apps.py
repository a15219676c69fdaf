from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "monitoring"

    def ready(self) -> None:
        from registry.evidence import evidence_provider, promotion_gate

        from .canary import canary_findings, canary_gate
        from .preflight import preflight_findings, preflight_gate, shadow_findings

        # The approver sees the canary's verdict and the pre-flight; a production request needs both.
        evidence_provider(canary_findings)
        evidence_provider(preflight_findings)
        evidence_provider(shadow_findings)
        promotion_gate("canary_analysis", canary_gate)
        promotion_gate("preflight", preflight_gate)
