"""Pre-flight replay: before a candidate goes to production, it and production answer the same stored
production inputs (serving.sample_store) — top-1 agreement, the classes that changed, confidence
shift, latency ratio, errors, and which inputs disagree. A Celery task runs it (tasks.run_preflight) as a
background job (releases.jobs); the result is stored with the version and is evidence for the approver
and the production gate."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from django.conf import settings

from core import roles
from core.exceptions import ApplicationError, BadRequest
from core.roles import Permission
from modelspec.tasks import Task
from registry import selectors as registry_selectors
from registry.evidence import AMBER, OK, RED, Finding, VersionInfo
from registry.exceptions import TransitionRefused
from registry.models import ModelState
from serving import inference, sample_store
from serving.signal_catalogue import Source

from . import jobs
from .choices import ACTIVE, JobStatus
from .models import PreflightRun

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def preflight_start(*, model_name: str, version: int, actor: User, limit: int | None = None) -> PreflightRun:
    """Queue a replay of `version` against production (the caller enqueues the task). A run already
    queued or running for the version is returned instead of a second one."""
    roles.role_check(user=actor, permission=Permission.PREFLIGHT_RUN, model_name=model_name)
    limit = settings.PREFLIGHT_SAMPLES if limit is None else limit
    if not 1 <= limit <= settings.PREFLIGHT_MAX_SAMPLES:
        raise BadRequest(f"limit must be from 1 to {settings.PREFLIGHT_MAX_SAMPLES}", code="invalid_limit")
    model = registry_selectors.model_state_get(name=model_name)
    registry_selectors.version_row(model=model, version=version)  # 404 for an unknown version
    if model.production_version is None:
        raise TransitionRefused("there is no production version to compare with", code="no_production")
    if model.production_version == version:
        raise TransitionRefused(f"v{version} is production itself", code="already_live")
    production_version = model.production_version

    def fields() -> dict[str, Any]:
        available = len(sample_store.samples_for_replay(model=model_name, limit=limit))
        if not available:
            raise TransitionRefused(
                f"the sample store of {model_name} holds no production inputs yet: turn it on on the model "
                "page and let live traffic fill it",
                code="no_samples",
            )
        return {"production_version": production_version, "total": available, "started_by": actor}

    run, _ = jobs.job_start(PreflightRun, identity={"model": model_name, "version": version}, fields=fields)
    return run


def _ask(model: str, version: int, data: bytes) -> dict[str, Any]:
    """One version's answer through serving's inference seam (counted as replay traffic), or its error."""
    try:
        found = inference.answer(model_name=model, version=version, data=data, source=Source.REPLAY)
    except ApplicationError as exc:
        return {"error": exc.code, "message": exc.message}
    return {"answer": found.answer, "latency_ms": round(found.seconds * 1000, 3), "task": found.served.task}


def preflight_execute(*, run_id: int) -> PreflightRun:
    """Run a queued replay (the Celery task's body); safe to run again: a finished run is left alone."""
    run, claimed = jobs.job_claim(PreflightRun, job_id=run_id)
    if not claimed:
        return run
    samples = sample_store.samples_for_replay(model=run.model, limit=run.total)
    pairs = []
    try:
        for sample in samples:
            data = sample_store.sample_bytes(sample)
            pairs.append(
                (sample, _ask(run.model, run.production_version, data), _ask(run.model, run.version, data))
            )
            jobs.job_progress(run, done=run.done + 1)
    except Exception as exc:  # noqa: BLE001 - the run says why it stopped; the worker goes on
        jobs.job_failed(run, error=str(exc))
        return run
    jobs.job_done(run, result=_compare(pairs))
    return run


def _compare(pairs: list) -> dict[str, Any]:
    """Both versions' answers to the same inputs, compared as production's task compares answers."""
    both = [(s, p, c) for s, p, c in pairs if "error" not in p and "error" not in c]
    task: Task | None = both[0][1]["task"] if both else None
    agreement = changes = shift = None
    disagreements: list[dict[str, Any]] = []
    comparison: dict[str, Any] = {}
    if task is not None:
        answers = [(p["answer"], c["answer"]) for _, p, c in both]
        scores = [task.agreement(a, b) for a, b in answers]  # once per pair: a detector's is a matching
        agreement = statistics.fmean(scores)
        changes = task.changes(answers)
        shift = statistics.fmean(
            task.headline(b).confidence - task.headline(a).confidence for a, b in answers
        )
        disagreements = [
            {"sample": s.pk, "production": change.before, "candidate": change.after,
             "production_confidence": task.headline(p["answer"]).confidence,
             "candidate_confidence": task.headline(c["answer"]).confidence,
             "agreement": score,
             "production_drawn": task.drawn(p["answer"]), "candidate_drawn": task.drawn(c["answer"])}
            for (s, p, c), score in zip(both, scores, strict=True)
            if (change := task.change(p["answer"], c["answer"])) is not None
        ]  # fmt: skip
        disagreements = sorted(disagreements, key=lambda d: d["agreement"])[:60]  # the worst first
        comparison = {"task": task.name, "agreement_name": task.agreement_name, **task.compare(answers)}
    p_ms = statistics.median(p["latency_ms"] for _, p, _ in both) if both else None
    c_ms = statistics.median(c["latency_ms"] for _, _, c in both) if both else None
    return {
        "samples": len(pairs),
        "compared": len(both),
        "agreement": agreement,
        "changes": [{"production": ch.before, "candidate": ch.after, "count": n} for ch, n in changes or []],
        "confidence_shift": shift,
        "latency_ms": {"production": p_ms, "candidate": c_ms},
        "latency_ratio": (c_ms / p_ms) if p_ms and c_ms else None,
        "errors": {
            "production": sum(1 for _, p, _ in pairs if "error" in p),
            "candidate": sum(1 for _, _, c in pairs if "error" in c),
            "examples": sorted({c.get("message", "") for _, _, c in pairs if "error" in c})[:3],
        },
        "disagreements": disagreements,
        "comparison": comparison,
    }


def preflight_latest(*, model_name: str, version: int) -> PreflightRun | None:
    return PreflightRun.objects.filter(model=model_name, version=version).first()


def preflight_passed(run: PreflightRun | None, production_version: int | None) -> tuple[bool, str]:
    """Whether a run clears the production gate: done, against today's production, agreement at least
    PREFLIGHT_MIN_AGREEMENT and the candidate failing on no input production answered."""
    if run is None:
        return False, "no pre-flight has run"
    if run.status != JobStatus.DONE:
        return False, f"the pre-flight is {run.status}"
    if run.production_version != production_version:
        return (
            False,
            f"the pre-flight compared with v{run.production_version}, production is now v{production_version}",
        )
    result = run.result
    if result["errors"]["candidate"] > result["errors"]["production"]:
        return False, f"the candidate failed on {result['errors']['candidate']} inputs production answered"
    named = _agreement_name(result).lower()  # top-1 agreement, or a detector's box F1
    if result["agreement"] is None or result["agreement"] < settings.PREFLIGHT_MIN_AGREEMENT:
        return False, (
            f"{named} {percent(result['agreement'])} is under {percent(settings.PREFLIGHT_MIN_AGREEMENT)}"
        )
    return True, f"{named} {percent(result['agreement'])} on {result['compared']} production inputs"


def _agreement_name(result: dict[str, Any]) -> str:
    """What a run's agreement is called (runs from before the comparison was kept were classifiers')."""
    return (result.get("comparison") or {}).get("agreement_name", "Top-1 agreement")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def preflight_findings(model: ModelState, version: int, info: VersionInfo | None = None) -> list[Finding]:
    """The latest pre-flight as approval evidence (registry.evidence provider)."""
    run = preflight_latest(model_name=model.name, version=version)
    if run is None:
        return [
            Finding(
                "preflight",
                "Pre-flight",
                AMBER,
                "not run: nothing shows how it answers real production inputs",
            )
        ]
    if run.status in ACTIVE:
        return [Finding("preflight", "Pre-flight", AMBER, f"{run.status}: {run.done} of {run.total} inputs")]
    if run.status == JobStatus.FAILED:
        return [Finding("preflight", "Pre-flight", RED, f"failed: {run.error}")]
    passed, why = preflight_passed(run, model.production_version)
    result = run.result
    shift = result["confidence_shift"]
    ratio = result["latency_ratio"]
    summary = (
        f"{why}; {sum(c['count'] for c in result['changes'])} changed answers, confidence shift "
        f"{shift:+.3f}, latency ×{ratio:.2f}"
        if shift is not None and ratio is not None
        else why
    )
    boxes = (result.get("comparison") or {}).get("boxes")
    if boxes:  # a detector's: how many boxes each version found, and how well the matched ones overlap
        iou = result["comparison"]["mean_iou"]
        summary += f"; boxes {boxes['production']} → {boxes['candidate']} ({boxes['matched']} matched" + (
            f", mean IoU {iou:.2f})" if iou is not None else ")"
        )
    return [
        Finding("preflight", "Pre-flight", OK if passed else RED, summary, numbers={"run": run.pk, **result})
    ]


def preflight_gate(model: ModelState, version: int) -> list[str]:
    """The production gate: the version's latest pre-flight passed against today's production."""
    passed, why = preflight_passed(
        preflight_latest(model_name=model.name, version=version), model.production_version
    )
    return [] if passed or model.production_version is None else [f"pre-flight: {why}"]
