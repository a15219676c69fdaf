"""Alerts: rules score production against its baseline; alerts go pending → firing → resolved, and people
review them (acknowledge, snooze, assign, comment, resolve, re-baseline), every step recorded."""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from django.db import transaction
from django.utils import timezone

from controlplane.exceptions import BadRequest, Forbidden, NotFound
from registry import roles
from registry.choices import Role
from registry.selectors import model_state_get

from . import baselines, drift
from .models import Alert, AlertEvent, AlertRule, AlertState, DriftScore
from .selectors import windows_sum

log = logging.getLogger(__name__)
NUMERIC = {"confidence", "brightness", "contrast", "sharpness", "aspect_ratio", "latency"}
REVIEWERS = {Role.ENGINEER, Role.APPROVER, Role.OPERATOR, Role.ADMIN}  # acknowledge, assign, comment
SILENCERS = {Role.OPERATOR, Role.ADMIN}  # snooze, resolve, re-baseline


def rule_score(rule: AlertRule, *, now) -> DriftScore | None:
    """Score the rule's signal of the production version over its window; None without a baseline."""
    state = model_state_get(name=rule.model)
    if state.production_version is None:
        return None
    version = state.production_version
    baseline = baselines.baseline_current(model_name=rule.model, version=version)
    if baseline is None or rule.signal not in baseline.signals:
        return None
    start = now - timedelta(seconds=rule.window_seconds)
    ref = baseline.signals[rule.signal]
    cur = windows_sum(
        model=rule.model, version=version, stage="production", start=start, end=now, signal=rule.signal
    )
    cur = cur.get(rule.signal, {"bins": {}, "total": 0.0, "sum": 0.0})
    numeric = rule.signal in NUMERIC
    labels, ref_counts, cur_counts = drift.aligned(ref["bins"], cur["bins"], numeric=numeric)
    extra = {"min_samples": rule.min_samples}
    edges = drift.edges_for(labels) if numeric else None
    if numeric and rule.method == "mean_drop" and ref["total"] and cur["total"]:
        extra["ref_mean_var"] = drift.exact_mean_var(ref, ref_counts, edges)
        extra["cur_mean_var"] = drift.exact_mean_var(cur, cur_counts, edges)
    result = drift.score(rule.method, ref_counts, cur_counts, edges=edges, threshold=rule.threshold, **extra)
    return DriftScore.objects.create(
        model=rule.model, version=version, signal=rule.signal, method=rule.method, value=result.value,
        p_value=result.p_value, threshold=result.threshold, n_ref=result.n_ref, n_cur=result.n_cur,
        window_start=start, window_end=now, verdict=result.verdict, baseline=baseline, rule=rule,
    )  # fmt: skip


def alert_event_record(alert: Alert, action: str, *, actor=None, note: str = "", **details) -> AlertEvent:
    return AlertEvent.objects.create(alert=alert, action=action, actor=actor, note=note, details=details)


def _notify(alert: Alert, action: str) -> None:
    url = alert.rule.webhook_url if alert.rule else ""
    if not url:
        return
    body = {
        "alert": alert.pk, "action": action, "state": alert.state, "title": alert.title, "model": alert.model,
        "version": alert.version, "signal": alert.signal, "severity": alert.severity, "value": alert.last_value,
    }  # fmt: skip
    try:
        requests.post(url, json=body, timeout=5)
    except requests.RequestException as exc:  # a dead receiver must not stop evaluation
        log.warning("alert webhook %s failed: %s", url, exc)


def alerts_evaluate(*, now=None) -> list[Alert]:
    """One pass over every enabled rule; returns the alerts whose state changed."""
    now = now or timezone.now()
    changed = []
    for rule in AlertRule.objects.filter(enabled=True):
        try:
            changed += _evaluate_rule(rule, now)
        except Exception:  # one broken rule must not silence the others
            log.exception("evaluating alert rule #%s (%s) failed", rule.pk, rule)
    return changed


def _evaluate_rule(rule: AlertRule, now) -> list[Alert]:
    changed = []
    with transaction.atomic():
        score = rule_score(rule, now=now)
        if score is None or score.verdict == "not enough data":
            return changed  # no verdict, no change
        alert = Alert.objects.filter(rule=rule).exclude(state=AlertState.RESOLVED).first()
        action = None
        if score.verdict == "drift":
            if alert is None:
                alert = Alert.objects.create(
                    rule=rule, title=rule.name, model=rule.model, version=score.version, signal=rule.signal,
                    severity=rule.severity, started_at=now, last_value=score.value, last_score=score,
                )  # fmt: skip
                action = "pending"
            alert.last_value, alert.last_score = score.value, score
            if (
                alert.state == AlertState.PENDING
                and (now - alert.started_at).total_seconds() >= rule.for_seconds
            ):
                alert.state, alert.fired_at, action = AlertState.FIRING, now, "firing"
            if alert.snoozed_until_worse_than is not None and score.value > alert.snoozed_until_worse_than:
                alert.snoozed_until_worse_than = None
                action = action or "worse"
            alert.save()
        elif alert is not None:
            alert.state, alert.resolved_at, alert.last_value, alert.last_score = (
                AlertState.RESOLVED, now, score.value, score,
            )  # fmt: skip
            alert.save()
            action = "resolved"
        if action:
            alert_event_record(
                alert,
                action,
                note=f"{score.method}={score.value:.4g} (threshold {score.threshold:.4g}, n={score.n_ref}/{score.n_cur})",
                score=score.pk,
            )
            changed.append(alert)
            if not alert.snoozed(now) or action == "worse":
                transaction.on_commit(lambda a=alert, act=action: _notify(a, act))
    return changed


# --- review ------------------------------------------------------------------------------------


def review_role_check(actor, allowed: set[str], what: str) -> None:
    if not (roles.user_roles(actor) & allowed):
        raise Forbidden(
            f"'{what}' needs one of the roles: {', '.join(sorted(allowed))}", code="role_required"
        )


def alert_get(*, alert_id: int) -> Alert:
    try:
        return Alert.objects.select_related("rule", "assignee", "acknowledged_by").get(pk=alert_id)
    except Alert.DoesNotExist:
        raise NotFound(f"alert #{alert_id} does not exist") from None


def alert_acknowledge(*, alert_id: int, actor, note: str = "") -> Alert:
    review_role_check(actor, REVIEWERS, "acknowledge")
    alert = alert_get(alert_id=alert_id)
    alert.acknowledged_by, alert.acknowledged_at = actor, timezone.now()
    alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
    alert_event_record(alert, "acknowledged", actor=actor, note=note)
    return alert


def alert_snooze(*, alert_id: int, actor, until=None, until_worse: bool = False, note: str = "") -> Alert:
    review_role_check(actor, SILENCERS, "snooze")
    alert = alert_get(alert_id=alert_id)
    if until is None and not until_worse:
        raise BadRequest("snooze until a time, or until the score gets worse", code="invalid_snooze")
    if until is not None and until <= timezone.now():
        raise BadRequest("the snooze must end in the future", code="invalid_snooze")
    alert.snoozed_until = until
    alert.snoozed_until_worse_than = alert.last_value if until_worse else None
    alert.save(update_fields=["snoozed_until", "snoozed_until_worse_than"])
    alert_event_record(
        alert,
        "snoozed",
        actor=actor,
        note=note,
        until=until.isoformat() if until else None,
        until_worse=until_worse,
    )
    return alert


def alert_assign(*, alert_id: int, actor, assignee, note: str = "") -> Alert:
    review_role_check(actor, REVIEWERS, "assign")
    alert = alert_get(alert_id=alert_id)
    alert.assignee = assignee
    alert.save(update_fields=["assignee"])
    alert_event_record(
        alert, "assigned", actor=actor, note=note, assignee=assignee.get_username() if assignee else None
    )
    return alert


def alert_comment(*, alert_id: int, actor, note: str) -> Alert:
    review_role_check(actor, REVIEWERS, "comment")
    if not note.strip():
        raise BadRequest("a comment needs text", code="empty_comment")
    alert = alert_get(alert_id=alert_id)
    alert_event_record(alert, "commented", actor=actor, note=note)
    return alert


def alert_resolve(*, alert_id: int, actor, reason: str) -> Alert:
    review_role_check(actor, SILENCERS, "resolve")
    if not reason.strip():
        raise BadRequest("resolving by hand needs a reason", code="reason_required")
    alert = alert_get(alert_id=alert_id)
    if alert.state == AlertState.RESOLVED:
        raise BadRequest("the alert is already resolved", code="already_resolved")
    alert.state, alert.resolved_at = AlertState.RESOLVED, timezone.now()
    alert.save(update_fields=["state", "resolved_at"])
    alert_event_record(alert, "resolved", actor=actor, note=reason)
    return alert


def alert_rebaseline(*, alert_id: int, actor, reason: str) -> Alert:
    """Accept the alert's window as the version's new normal, then resolve the alert."""
    review_role_check(actor, SILENCERS, "re-baseline")
    alert = alert_get(alert_id=alert_id)
    if alert.last_score is None or alert.version is None:
        raise BadRequest("this alert has no scored window to adopt", code="no_window")
    baseline = baselines.baseline_adopt_window(
        model_name=alert.model, version=alert.version, start=alert.last_score.window_start,
        end=alert.last_score.window_end, actor=actor, reason=reason or f"re-baselined from alert #{alert.pk}",
    )  # fmt: skip
    alert_event_record(alert, "rebaselined", actor=actor, note=reason, baseline=baseline.pk)
    if alert.state != AlertState.RESOLVED:
        alert.state, alert.resolved_at = AlertState.RESOLVED, timezone.now()
        alert.save(update_fields=["state", "resolved_at"])
        alert_event_record(alert, "resolved", actor=actor, note="new baseline adopted")
    return alert


DEFAULT_RULES = (
    ("mean confidence fell", "confidence", "mean_drop", "critical"),
    ("confidence distribution moved", "confidence", "ks", "warning"),
    ("input brightness moved", "brightness", "ks", "warning"),
    ("input sharpness moved", "sharpness", "ks", "info"),
    ("input shapes changed", "shapes", "chi_square", "warning"),
)


def monitoring_defaults_ensure(*, model_name: str, window_seconds: int = 900) -> None:
    """A canary plan and the usual drift rules for a model, unless it has some already."""
    from .models import CanaryPlan

    CanaryPlan.objects.get_or_create(model=model_name, defaults={"interval_seconds": 120, "min_samples": 200})
    if not AlertRule.objects.filter(model=model_name).exists():
        AlertRule.objects.bulk_create(
            AlertRule(
                model=model_name,
                name=name,
                signal=signal,
                method=method,
                severity=severity,
                window_seconds=window_seconds,
            )  # fmt: skip
            for name, signal, method, severity in DEFAULT_RULES
        )
