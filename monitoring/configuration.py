"""What people configure about monitoring, for pages and API alike: a model's alert rules (engineers and
operators) and silences (operators) — each checked against the role table, validated here once, and
recorded in the model's configuration history (registry.config_history) in the same transaction. A
model's canary plan is releases' (releases.canary)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.exceptions import BadRequest, NotFound
from core.roles import Permission, role_check, role_check_somewhere
from registry.choices import ConfigAction, ConfigKind
from registry.config_history import config_change_record, config_snapshot
from registry.models import ModelState
from registry.selectors import model_state_get, model_task
from serving import signal_catalogue as signals

from . import drift, webhooks
from .alert_evaluation import rule_alerts_resolve
from .choices import BELOW, Performance
from .models import AlertRule, Silence
from .selectors import alert_get, silence_get

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

NUMERIC_ONLY = frozenset({"ks", "wasserstein", "mean_drop", "low_share"})
RULE_FIELDS = (
    "name", "signal", "method", "threshold", "window_seconds", "for_seconds", "severity", "min_samples",
    "webhook_url", "enabled",
)  # fmt: skip


# --- alert rules --------------------------------------------------------------------------------


def _webhook_check(url: str) -> None:
    """A rule's webhook may not point into the control plane's own host or network (loopback, link-local
    such as a cloud's metadata address, private ranges) unless ALERT_WEBHOOK_ALLOW_PRIVATE says so: a
    rule is written through the API, and the server would post wherever it says. A name is resolved now
    (and again at every delivery); one that does not resolve is refused, allowed or not."""
    if url:
        webhooks.target_check(url, allow_private=settings.ALERT_WEBHOOK_ALLOW_PRIVATE)


def _rule_check(rule: AlertRule) -> None:
    _webhook_check(rule.webhook_url)
    if rule.signal in Performance.values or rule.method == BELOW:
        if rule.signal not in Performance.values or rule.method != BELOW:
            raise BadRequest(
                f"the performance signals ({', '.join(Performance.values)}) are judged with method "
                f"{BELOW!r}, and only they are",
                code="method_signal_mismatch",
            )
        if rule.threshold is None or not 0 < rule.threshold <= 1:
            raise BadRequest(
                f"a {rule.signal} rule needs a threshold between 0 and 1 (0 < threshold ≤ 1)",
                code="threshold_required",
            )
        task = model_task(model=model_state_get(name=rule.model))
        if task is not None and rule.signal not in task.performance:
            raise BadRequest(
                f"{rule.model} does {task.name}: {rule.signal!r} is not among its performance signals "
                f"({', '.join(task.performance)})",
                code="invalid_signal",
            )
        return
    if rule.signal not in signals.SIGNALS:
        raise BadRequest(f"unknown signal {rule.signal!r}", code="invalid_signal")
    task = model_task(model=model_state_get(name=rule.model))
    if task is not None and rule.signal not in signals.catalogue(task):
        raise BadRequest(
            f"{rule.model} does {task.name}: {rule.signal!r} is not among its signals "
            f"({', '.join(signals.catalogue(task))})",
            code="invalid_signal",
        )
    if rule.method not in drift.THRESHOLDS:
        raise BadRequest(f"unknown method {rule.method!r}", code="invalid_method")
    if rule.method in NUMERIC_ONLY and rule.signal not in signals.NUMERIC:
        raise BadRequest(
            f"{rule.method} compares histograms of numbers; {rule.signal} is a set of categories "
            "(use chi_square, psi, jensen_shannon, hellinger or l_infinity)",
            code="method_signal_mismatch",
        )
    if rule.threshold is None and drift.THRESHOLDS[rule.method] is None:
        raise BadRequest(f"{rule.method} needs a threshold in the signal's units", code="threshold_required")


def alert_rule_create(*, model_name: str, actor: User, **fields: Any) -> AlertRule:
    role_check(user=actor, permission=Permission.MONITORING_CONFIGURE, model_name=model_name)
    model_state_get(name=model_name)
    rule = AlertRule(model=model_name, **{k: v for k, v in fields.items() if k in RULE_FIELDS})
    _rule_check(rule)
    with transaction.atomic():
        rule.save()
        _rule_recorded(rule, ConfigAction.CREATED, actor=actor, after=config_snapshot(rule, RULE_FIELDS))
    return rule


def _rule_recorded(rule: AlertRule, action: ConfigAction, *, actor: User, **change: Any) -> None:
    config_change_record(
        model_name=rule.model,
        kind=ConfigKind.ALERT_RULE,
        subject=rule.pk,
        action=action,
        actor=actor,
        **change,
    )


def alert_rule_get(*, rule_id: int) -> AlertRule:
    try:
        return AlertRule.objects.get(pk=rule_id)
    except AlertRule.DoesNotExist:
        raise NotFound(f"alert rule #{rule_id} does not exist") from None


def alert_rule_update(*, rule_id: int, actor: User, **fields: Any) -> AlertRule:
    role_check_somewhere(user=actor, permission=Permission.MONITORING_CONFIGURE)
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().filter(pk=rule_id).first()
        if rule is None:
            raise NotFound(f"alert rule #{rule_id} does not exist")
        role_check(user=actor, permission=Permission.MONITORING_CONFIGURE, model_name=rule.model)
        was_enabled, before = rule.enabled, config_snapshot(rule, RULE_FIELDS)
        for key, value in fields.items():
            if key in RULE_FIELDS:
                setattr(rule, key, value)
        _rule_check(rule)
        rule.save()
        after = config_snapshot(rule, RULE_FIELDS)
        _rule_recorded(rule, ConfigAction.UPDATED, actor=actor, before=before, after=after)
        if was_enabled and not rule.enabled:
            rule_alerts_resolve(rule, note=f"rule #{rule.pk} disabled", actor=actor)
    return rule


def alert_rule_delete(*, rule_id: int, actor: User) -> None:
    """Delete a rule; its alerts stay (without their rule), its scores go with it."""
    role_check_somewhere(user=actor, permission=Permission.MONITORING_CONFIGURE)
    rule = alert_rule_get(rule_id=rule_id)
    role_check(user=actor, permission=Permission.MONITORING_CONFIGURE, model_name=rule.model)
    with transaction.atomic():
        rule_alerts_resolve(rule, note=f"rule #{rule.pk} “{rule.name}” deleted", actor=actor)
        _rule_recorded(rule, ConfigAction.DELETED, actor=actor, before=config_snapshot(rule, RULE_FIELDS))
        rule.delete()


def alert_rules(*, model_name: str) -> list[AlertRule]:
    model_state_get(name=model_name)
    return list(AlertRule.objects.filter(model=model_name).order_by("id"))


# --- silences -----------------------------------------------------------------------------------

SILENCE_FIELDS = (
    "model",
    "rule",
    "version",
    "severity",
    "signal",
    "starts_at",
    "ends_at",
    "comment",
    "expired_at",
)


def silence_create(
    *,
    actor: User,
    comment: str,
    ends_at: datetime | None = None,
    duration_minutes: int | None = None,
    starts_at: datetime | None = None,
    model: str = "",
    rule: int | None = None,
    version: int | None = None,
    severity: str = "",
    signal: str = "",
    from_alert: int | None = None,
) -> Silence:
    """A silence by matchers (or copied from an alert's: its rule, model and version), until `ends_at` or
    for `duration_minutes`. A silence of one model (named, or its rule's) needs a role for that model;
    one matching every model needs a role for all models."""
    role_check_somewhere(user=actor, permission=Permission.ALERT_SILENCE)
    now = timezone.now()
    if from_alert is not None:
        alert = alert_get(alert_id=from_alert)
        model, rule, version, severity = alert.model, alert.rule_id, alert.version, ""
        signal = "" if alert.rule_id else alert.signal  # a rule names its signal already
    if not comment.strip():
        raise BadRequest("say why the alerts are silenced", code="comment_required")
    if not any((model, rule, version, severity, signal)):
        raise BadRequest(
            "a silence needs at least one matcher (model, rule, version, severity or signal)",
            code="matcher_required",
        )
    if model and not ModelState.objects.filter(name=model).exists():
        raise BadRequest(
            f"there is no model {model!r}: the silence would match nothing", code="invalid_model"
        )
    scope = model  # the model the silence is about (its rule's), if any
    if rule is not None:
        found = AlertRule.objects.filter(pk=rule).first()
        if found is None:
            raise BadRequest(f"alert rule #{rule} does not exist", code="invalid_rule")
        if model and model != found.model:
            raise BadRequest(f"rule #{rule} belongs to {found.model!r}, not {model!r}", code="invalid_rule")
        scope = found.model
    role_check(user=actor, permission=Permission.ALERT_SILENCE, model_name=scope or None)
    starts_at = max(starts_at or now, now - timedelta(minutes=1))
    if (ends_at is None) == (duration_minutes is None):
        raise BadRequest("give either ends_at or duration_minutes", code="invalid_expiry")
    ends_at = ends_at or starts_at + timedelta(minutes=duration_minutes or 0)
    if ends_at <= max(starts_at, now):
        raise BadRequest("a silence must end in the future, after it starts", code="invalid_expiry")
    if ends_at > now + timedelta(days=settings.SILENCE_MAX_DAYS):
        raise BadRequest(
            f"a silence lasts at most {settings.SILENCE_MAX_DAYS} days (SILENCE_MAX_DAYS)",
            code="invalid_expiry",
        )
    with transaction.atomic():
        silence = Silence.objects.create(
            model=model, rule_id=rule, version=version, severity=severity, signal=signal, starts_at=starts_at,
            ends_at=ends_at, comment=comment, created_by=actor,
        )  # fmt: skip
        config_change_record(
            model_name=scope, kind=ConfigKind.SILENCE, subject=silence.pk, action=ConfigAction.CREATED,
            actor=actor, after=config_snapshot(silence, SILENCE_FIELDS),
        )  # fmt: skip
    return silence


def silence_expire(*, silence_id: int, actor: User) -> Silence:
    role_check_somewhere(user=actor, permission=Permission.ALERT_SILENCE)
    silence = silence_get(silence_id=silence_id)
    role_check(user=actor, permission=Permission.ALERT_SILENCE, model_name=silence.model or None)
    now = timezone.now()
    if not silence.active_at(now) and silence.starts_at <= now:
        raise BadRequest(f"silence #{silence_id} has already ended", code="already_expired")
    with transaction.atomic():
        before = config_snapshot(silence, SILENCE_FIELDS)
        silence.expired_at, silence.expired_by = now, actor
        silence.save(update_fields=["expired_at", "expired_by"])
        config_change_record(
            model_name=silence.model or (silence.rule.model if silence.rule else ""), kind=ConfigKind.SILENCE,
            subject=silence.pk, action=ConfigAction.EXPIRED, actor=actor, before=before,
            after=config_snapshot(silence, SILENCE_FIELDS),
        )  # fmt: skip
    return silence
