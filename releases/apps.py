from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "releases"

    def ready(self) -> None:
        from monitoring.extensions import (
            PageSection,
            SettingsForm,
            judgement_provider,
            model_page_section,
            settings_form,
        )
        from registry.evidence import evidence_provider, promotion_gate

        from .canary import (
            canary_analyses,
            canary_findings,
            canary_gate,
            canary_judgement,
            canary_plan_context,
        )
        from .preflight import preflight_findings, preflight_gate
        from .quantization import quantization_findings
        from .shadow_evidence import shadow_findings
        from .views import canary_plan_save

        # The approver sees the canary's verdict, the pre-flight and the shadow; a production request
        # needs the first two.
        evidence_provider(canary_findings)
        evidence_provider(preflight_findings)
        evidence_provider(shadow_findings)
        evidence_provider(quantization_findings)
        promotion_gate("canary_analysis", canary_gate)
        promotion_gate("preflight", preflight_gate)
        # Monitoring's pages show the canary beside production's drift, and its plan beside the rules.
        judgement_provider(canary_judgement)
        model_page_section(PageSection("releases/partials/_canary_analyses.html", canary_analyses))
        settings_form(
            SettingsForm("plan", "releases/partials/_canary_plan.html", canary_plan_context, canary_plan_save)
        )
