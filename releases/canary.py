"""Canary analysis: the canary against production over the same window. Pass → next weight step (at 100
it asks for production approval); inconclusive → hold; fail → abort the canary, with the numbers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.exceptions import ApplicationError, BadRequest
from core.roles import Permission, Role, role_check
from modelspec.tasks import Task, task_for
from monitoring import drift
from monitoring.choices import BOT
from monitoring.extensions import Judgement
from monitoring.selectors import windows_sum
from registry import selectors as registry_selectors
from registry import services as registry_services
from registry.choices import Action, ConfigAction, ConfigKind, Stage
from registry.config_history import config_change_record, config_snapshot
from registry.evidence import AMBER, OK, RED, Finding, VersionInfo
from serving import signal_catalogue as signals

from .choices import CanaryVerdict
from .models import CanaryAnalysis, CanaryPlan

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from registry.models import ModelState


ERROR_OUTCOMES = {"error"}
PLAN_FIELDS = ("steps", "interval_seconds", "min_samples", "failure_limit", "enabled")


# --- canary plans -------------------------------------------------------------------------------


def canary_plan_get(*, model_name: str) -> CanaryPlan:
    """The model's plan (the defaults until someone changes them)."""
    registry_selectors.model_state_get(name=model_name)
    return CanaryPlan.objects.get_or_create(model=model_name)[0]


def canary_plan_set(*, model_name: str, actor: User, **fields: Any) -> CanaryPlan:
    role_check(user=actor, permission=Permission.MONITORING_CONFIGURE, model_name=model_name)
    steps = fields.get("steps")
    if steps is not None:
        if not steps or steps != sorted(set(steps)) or not all(1 <= s <= 100 for s in steps):
            raise BadRequest("steps are rising percentages from 1 to 100, each once", code="invalid_steps")
        if steps[-1] != 100:
            raise BadRequest("the last step is 100 (asking for production approval)", code="invalid_steps")
    with transaction.atomic():
        plan = canary_plan_get(model_name=model_name)
        plan = CanaryPlan.objects.select_for_update().get(pk=plan.pk)
        before = config_snapshot(plan, PLAN_FIELDS)
        for key in PLAN_FIELDS:
            if fields.get(key) is not None:
                setattr(plan, key, fields[key])
        plan.save()
        config_change_record(
            model_name=model_name, kind=ConfigKind.CANARY_PLAN, action=ConfigAction.UPDATED, actor=actor,
            before=before, after=config_snapshot(plan, PLAN_FIELDS),
        )  # fmt: skip
    return plan


def canary_plan_ensure(*, model_name: str) -> CanaryPlan:
    """The demo's plan for a model (judged every two minutes), unless it has one already."""
    return CanaryPlan.objects.get_or_create(
        model=model_name, defaults={"interval_seconds": 120, "min_samples": 200}
    )[0]


# --- canary analysis ----------------------------------------------------------------------------


def bot_user() -> User:
    """The actor of automatic actions: an engineer (to step weights and ask for approval) and an
    operator (to abort); it can never approve."""
    user, created = get_user_model().objects.get_or_create(username=BOT, defaults={"email": ""})
    if created:
        user.set_unusable_password()
        user.save()
    for role in (Role.ENGINEER, Role.OPERATOR):
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def _p95(bins: dict) -> float | None:
    labels, counts, _ = drift.aligned(bins, {}, numeric=True)
    total = counts.sum()
    if total == 0:
        return None
    index = int(np.searchsorted(np.cumsum(counts), 0.95 * total))
    return drift.le_value(labels[min(index, len(labels) - 1)])


# Checks of every task's canary (name, method, the signal it reads); the answers' checks come first, from
# the task's signals (modelspec.signals.Signal.canary_checks).
COMMON_CHECKS = (
    ("input shapes", "chi_square", signals.SHAPES.name),
    ("P95 latency", "p95_ratio", signals.LATENCY.name),
    ("error rate", "two_proportion_z", signals.OUTCOMES.name),
)


def _unjudged(name: str, method: str, prod: dict | None, canary: dict | None) -> dict:
    """A check that could not be computed: which side had no predictions of its signal."""
    missing = [side for side, found in (("production", prod), ("canary", canary)) if not found]
    return {
        "check": name, "method": method, "value": None, "threshold": None, "p_value": None,
        "n_ref": int(prod["total"]) if prod else 0, "n_cur": int(canary["total"]) if canary else 0,
        "drift": None, "detail": {"missing": missing},
    }  # fmt: skip


def _check(name: str, method: str, prod: dict, canary: dict, min_samples: int) -> dict:
    if method == "ks" or method == "mean_drop":
        labels, ref, cur = drift.aligned(prod["bins"], canary["bins"], numeric=True)
        extra: dict[str, Any] = {"min_samples": min_samples, "min_reference": min_samples}
        if method == "mean_drop":
            edges = drift.edges_for(labels)
            extra |= {
                "edges": edges,
                "ref_mean_var": drift.exact_mean_var(prod, ref, edges),
                "cur_mean_var": drift.exact_mean_var(canary, cur, edges),
            }
        return {"check": name, **_as_dict(drift.score(method, ref, cur, **extra))}
    if method == "chi_square":
        _, ref, cur = drift.aligned(prod["bins"], canary["bins"], numeric=False)
        return {"check": name, **_as_dict(drift.score(method, ref, cur, min_samples=min_samples))}
    n_ref, n_cur = int(prod["total"]), int(canary["total"])
    enough = min(n_ref, n_cur) >= min_samples
    if method == "p95_ratio":
        p95_ref, p95_cur = _p95(prod["bins"]), _p95(canary["bins"])
        limit = p95_ref * 1.5 + 0.005 if p95_ref is not None else None
        return {
            "check": name, "method": method, "value": p95_cur, "threshold": limit, "p_value": None,
            "n_ref": n_ref, "n_cur": n_cur, "reference": p95_ref,
            "drift": (p95_cur > limit) if enough and limit is not None and p95_cur is not None else None,
        }  # fmt: skip
    k_ref = sum(v for k, v in prod["bins"].items() if k in ERROR_OUTCOMES)
    k_cur = sum(v for k, v in canary["bins"].items() if k in ERROR_OUTCOMES)
    rise, p_value = drift.share_increase_z(k_ref, prod["total"], k_cur, canary["total"])
    return {
        "check": name, "method": method, "value": rise, "threshold": 0.01, "p_value": p_value,
        "n_ref": n_ref, "n_cur": n_cur, "drift": (rise >= 0.01 and p_value < drift.ALPHA) if enough else None,
    }  # fmt: skip


def _collected(check: dict) -> bool:
    """Whether either side has the check's signal at all (a signal neither side collects, e.g. no tracked
    classes, cannot hold a canary forever; one side missing can)."""
    return len(check.get("detail", {}).get("missing", [])) < 2


def checks_of(task: Task) -> list[tuple[str, str, str]]:
    """A canary's checks for a model of this task: its answers' signals, then the common ones."""
    answers = [
        (name, method, signal.name) for signal in task.signals for name, method in signal.canary_checks
    ]
    return [*answers, *COMMON_CHECKS]


def _checks(task: Task, prod: dict, canary: dict, min_samples: int) -> list[dict]:
    """Every check, always: one that cannot be computed yet says which side lacks predictions, so a
    "hold" names what it waits for."""
    checks = []
    for name, method, signal in checks_of(task):
        p, c = prod.get(signal), canary.get(signal)
        if p and c and p["total"] and c["total"]:
            checks.append(_check(name, method, p, c, min_samples))
        else:
            checks.append(_unjudged(name, method, p, c))
    return checks


def _as_dict(score: drift.Score) -> dict:
    return {
        "method": score.method, "value": score.value, "threshold": score.threshold, "p_value": score.p_value,
        "n_ref": score.n_ref, "n_cur": score.n_cur, "drift": score.drift, "detail": score.detail,
    }  # fmt: skip


def _summary(checks: list[dict]) -> str:
    failed = [c for c in checks if c["drift"]]
    parts = []
    for c in failed:
        p = f", p={c['p_value']:.1e}" if c.get("p_value") is not None else ""
        parts.append(
            f"{c['check']}: {c['method']}={c['value']:.3g} ≥ {c['threshold']:.3g}{p} (n={c['n_ref']}/{c['n_cur']})"
        )
    return "; ".join(parts)


def canary_analyze(*, model_name: str, now: datetime | None = None) -> CanaryAnalysis | None:
    """Judge the running canary once; None when there is no canary or it was judged within the interval."""
    now = now or timezone.now()
    model = registry_selectors.model_state_get(name=model_name)
    if model.canary_version is None or model.production_version is None:
        return None
    plan, _ = CanaryPlan.objects.get_or_create(model=model_name)
    if not plan.enabled:
        return None
    started = (
        registry_selectors.event_list(model=model)
        .filter(Q(action=Action.CANARY_START) | Q(action=Action.CANARY_WEIGHT), version=model.canary_version)
        .values_list("created_at", flat=True)
        .first()
    )
    last = CanaryAnalysis.objects.filter(model=model_name, canary_version=model.canary_version).first()
    if last is not None and (now - last.window_end).total_seconds() < plan.interval_seconds:
        return None
    # Each weight step is judged on everything since it began; the interval only sets how often.
    start = started or now - timedelta(seconds=plan.interval_seconds)
    prod = windows_sum(
        model=model_name, version=model.production_version, stage=Stage.PRODUCTION, start=start, end=now
    )
    canary = windows_sum(
        model=model_name, version=model.canary_version, stage=Stage.CANARY, start=start, end=now
    )
    task = task_for(registry_selectors.version_metadata(name=model_name, version=model.production_version))
    checks = _checks(task, prod, canary, plan.min_samples)
    failures = sum(1 for c in checks if c["drift"])
    if failures >= plan.failure_limit:
        verdict = CanaryVerdict.FAIL
    elif not (judged := [c for c in checks if _collected(c)]) or any(c["drift"] is None for c in judged):
        verdict = CanaryVerdict.HOLD
    else:
        verdict = CanaryVerdict.PASS
    analysis = CanaryAnalysis.objects.create(
        model=model_name, canary_version=model.canary_version, production_version=model.production_version,
        window_start=start, window_end=now, verdict=verdict, weight_before=model.canary_weight, checks=checks,
    )  # fmt: skip
    analysis.action = _act(model, plan, analysis)
    analysis.save(update_fields=["action"])
    return analysis


def _act(model: ModelState, plan: CanaryPlan, analysis: CanaryAnalysis) -> str:
    bot = bot_user()
    seen = registry_services.Expected(revision=model.revision)  # the state this analysis judged
    try:
        if analysis.verdict == CanaryVerdict.FAIL:
            registry_services.canary_abort(
                model_name=model.name,
                actor=bot,
                reason=f"canary analysis failed: {_summary(analysis.checks)}",
                details={"analysis": analysis.pk, "verdict": CanaryVerdict.FAIL, "checks": analysis.checks},
                expected=seen,
            )
            return "aborted"
        if analysis.verdict != CanaryVerdict.PASS:
            return "held"
        assert model.canary_version is not None  # canary_analyze judges running canaries only
        following = [s for s in plan.steps if s > model.canary_weight]
        if not following or following[0] >= 100:
            if registry_selectors.pending_request(model=model) is None:
                registry_services.production_request(
                    model_name=model.name, version=model.canary_version, actor=bot,
                    reason=f"canary analysis passed at {model.canary_weight} % (analysis #{analysis.pk})",
                    expected=seen,
                )  # fmt: skip
            return "production requested"
        weight = min(following[0], settings.CANARY_WEIGHT_MAX)
        registry_services.canary_set_weight(
            model_name=model.name,
            weight=weight,
            actor=bot,
            reason=f"canary analysis passed (analysis #{analysis.pk})",
            expected=seen,
        )
        return f"weight {model.canary_weight} → {weight}"
    except ApplicationError as exc:
        return f"not acted: {exc.message}"


def canary_findings(model: ModelState, version: int, info: VersionInfo | None = None) -> list[Finding]:
    """The latest canary analysis of a version, as approval evidence (registry.evidence provider)."""
    analysis = CanaryAnalysis.objects.filter(model=model.name, canary_version=version).first()
    if analysis is None:
        return [
            Finding(
                "canary", "Canary analysis", AMBER,
                f"v{version} has no canary analysis: nothing says how it behaved on live traffic",
            )
        ]  # fmt: skip
    n = min((c["n_cur"] for c in analysis.checks if c.get("n_cur") is not None), default=0)
    minutes = (analysis.window_end - analysis.window_start).total_seconds() / 60
    flag = {str(CanaryVerdict.PASS): OK, str(CanaryVerdict.FAIL): RED}.get(analysis.verdict, AMBER)
    summary = {
        str(
            CanaryVerdict.PASS
        ): f"passed at {analysis.weight_before} % against v{analysis.production_version}",
        str(CanaryVerdict.FAIL): f"failed: {_summary(analysis.checks)}",
    }.get(analysis.verdict, f"on hold: not enough traffic yet (n={n}) to judge")
    return [
        Finding(
            "canary", "Canary analysis", flag, f"{summary}; {n} canary predictions over {minutes:.0f} min",
            numbers={
                "analysis": analysis.pk, "verdict": analysis.verdict, "canary_predictions": n,
                "window_minutes": round(minutes, 1), "weight": analysis.weight_before,
                "checks": [
                    {k: c.get(k) for k in ("check", "method", "value", "threshold", "drift")} for c in analysis.checks
                ],
            },
        )
    ]  # fmt: skip


def canary_gate(model: ModelState, version: int) -> list[str]:
    """The production gate: the version's latest canary analysis passed (a first production version has
    nothing to be compared with)."""
    if model.production_version is None:
        return []
    analysis = CanaryAnalysis.objects.filter(model=model.name, canary_version=version).first()
    if analysis is None:
        return ["no canary analysis has passed (none has run)"]
    if analysis.verdict != CanaryVerdict.PASS:
        return [f"its latest canary analysis is {analysis.verdict}, not pass"]
    return []


# --- on monitoring's pages (monitoring.extensions) ------------------------------------------------


def canary_judgement(model: ModelState) -> Judgement | None:
    """The running canary against production, as its latest analysis saw it."""
    if model.canary_version is None or model.production_version is None:
        return None
    pair = f"canary v{model.canary_version} against production v{model.production_version}"
    analysis = CanaryAnalysis.objects.filter(
        model=model.name, canary_version=model.canary_version, production_version=model.production_version
    ).first()
    if analysis is None:
        return Judgement(pair, "not judged yet", False, [], None)
    plan = CanaryPlan.objects.filter(model=model.name).first()
    needed = plan.min_samples if plan else drift.MIN_SAMPLES
    # predictions, from the checks every task has (a detector's box checks count boxes)
    common = [c for c in analysis.checks if c["check"] in {name for name, _, _ in COMMON_CHECKS}]
    n_prod = max((c.get("n_ref") or 0 for c in common), default=0)
    n_canary = max((c.get("n_cur") or 0 for c in common), default=0)
    sides = [
        (f"v{model.production_version} production", n_prod, needed, "prediction"),
        (f"v{model.canary_version} canary", n_canary, needed, "prediction"),
    ]
    enough = analysis.verdict != CanaryVerdict.HOLD
    return Judgement(
        pair, analysis.verdict, enough, sides, analysis.window_end, bad=analysis.verdict == CanaryVerdict.FAIL
    )


def canary_analyses(model_name: str, until: datetime) -> dict[str, Any]:
    """The monitoring page's table: the model's latest analyses up to `until`."""
    return {"analyses": CanaryAnalysis.objects.filter(model=model_name, window_end__lte=until)[:20]}


def canary_plan_context(model_name: str) -> dict[str, Any]:
    """The settings page's canary-plan form."""
    return {"plan": canary_plan_get(model_name=model_name)}
