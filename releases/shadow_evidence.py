"""The shadow's results as evidence: how often a version answering mirrored live production traffic
(serving.shadow, which mirrors and tallies) agreed with production, shown to the approver."""

from __future__ import annotations

from django.conf import settings

from registry.evidence import AMBER, OK, RED, Finding, VersionInfo
from registry.models import ModelState
from serving import shadow

from .preflight import percent


def shadow_findings(model: ModelState, version: int, info: VersionInfo | None = None) -> list[Finding]:
    """The shadow's agreement with production, when `version` shadowed it (registry.evidence provider)."""
    found = shadow.agreement(model=model.name)
    if found.shadow_version != version or not found.total:
        return []
    rate = found.rate or 0.0
    flag = (
        OK if rate >= settings.PREFLIGHT_MIN_AGREEMENT and not found.errors else AMBER if rate >= 0.5 else RED
    )
    summary = f"agreed with production v{found.production_version} on {percent(rate)} of {found.total} mirrored live requests"
    if found.errors:
        summary += f"; failed on {found.errors}"
    return [
        Finding(
            "shadow",
            "Shadow",
            flag,
            summary,
            numbers={"total": found.total, "agree": found.agree, "errors": found.errors},
        )
    ]
