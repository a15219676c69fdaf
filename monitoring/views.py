"""Monitoring pages: charts from collected windows, canary judgements, gaps in collection, alerts and
their review. Reads come from selectors, review actions parse with the API's serializer."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.api import validated
from core.exceptions import ApplicationError, BadRequest
from core.roles import actor_of
from registry import selectors as registry_selectors
from registry.choices import Stage
from serving import sample_store, shadow, signals

from . import charts, drift, preflight, selectors, tasks
from .alert_review import alert_review
from .api.serializers import ReviewInput, SamplePolicyInput, ShadowInput


@login_required
@require_GET
def model_monitoring(request: HttpRequest, name: str) -> HttpResponse:
    span_key = request.GET.get("window", "1h")
    if span_key not in selectors.WINDOW_CHOICES:
        span_key = "1h"
    page = selectors.model_monitoring(name=name, span=selectors.WINDOW_CHOICES[span_key])
    windows, baseline = page.windows, page.baseline
    confidence, shapes, classes = signals.CONFIDENCE.name, signals.SHAPES.name, signals.CLASSES.name
    figures = [
        charts.reference_overlay(baseline, windows, confidence, "Top-1 confidence: baseline vs production")
        if baseline
        else None,
        charts.histogram_overlay(windows, confidence, "Top-1 confidence: production vs canary"),
        charts.mean_over_time(
            windows,
            confidence,
            "Mean confidence per window (band: baseline ± 0.05)",
            events=page.events,
            band=page.confidence_band,
        ),
        charts.p95_over_time(windows, "P95 latency per version"),
        charts.category_mix(windows, shapes, "Input-shape mix by version"),
        charts.category_mix_over_time(windows, shapes, f"Input-shape mix over time ({Stage.PRODUCTION})"),
        charts.histogram_overlay(windows, signals.BRIGHTNESS.name, "Input brightness"),
        charts.histogram_overlay(windows, signals.SHARPNESS.name, "Input sharpness"),
        charts.category_mix(windows, classes, "Predicted-class mix (tracked classes)"),
    ]
    context = {
        "model": page.model,
        "figures": [f for f in figures if f],
        "window": span_key,
        "windows": selectors.WINDOW_CHOICES,
        "short": page.short,
        "min_samples": drift.MIN_SAMPLES,
        "analyses": page.analyses,
        "scores": page.scores,
        "gap": page.gap,
    }
    return render(request, "monitoring/model.html", context)


@login_required
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "open")
    alerts = selectors.alert_list(open_only=state == "open")
    return render(request, "monitoring/alerts.html", {"alerts": alerts, "state": state})


@login_required
def alert_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    status, error = 200, None
    if request.method == "POST":
        try:
            alert_review(alert_id=alert_id, actor=actor_of(request), **validated(ReviewInput, request.POST))
        except ApplicationError as exc:
            status, error = exc.http_status, exc
        else:
            return redirect("monitoring:alert", alert_id=alert_id)
    page = selectors.alert_context(alert_id=alert_id)
    alert = page.alert
    figures = []
    if alert.signal:
        figures.append(
            charts.mean_over_time(
                page.windows, alert.signal, f"Mean {alert.signal} per window", events=page.nearby
            )
        )
        if alert.last_score is not None and alert.last_score.baseline_id:
            figures.append(charts.baseline_overlay(alert.last_score, page.windows))
    context = {
        "alert": alert,
        "model": page.model,
        "rollback_to": page.rollback_to,
        "nearby": page.nearby,
        "figures": [f for f in figures if f],
        "trail": page.trail,
        "users": page.users,
        "error": error,
    }
    return render(request, "monitoring/alert.html", context, status=status)


# --- promotion evidence: the sample store and pre-flight replays (fragments of the registry's pages) ---


@login_required
@require_GET
def model_samples(request: HttpRequest, name: str) -> HttpResponse:
    """The model page's sample-store card (loaded into the page by htmx)."""
    registry_selectors.model_state_get(name=name)
    return render(
        request,
        "monitoring/partials/_samples.html",
        {"name": name, "store": sample_store.summary(model=name)},
    )


@login_required
@require_POST
def samples_manage(request: HttpRequest, name: str) -> HttpResponse:
    registry_selectors.model_state_get(name=name)
    actor, what = actor_of(request), request.POST.get("what")
    try:
        if what == "purge":
            messages.success(
                request, f"Purged {sample_store.purge(model=name, actor=actor)} stored inputs of {name}."
            )
        elif what in ("on", "off"):
            sample_store.policy_set(
                model=name,
                actor=actor,
                **validated(SamplePolicyInput, request.POST, enabled=what == "on"),
            )
            messages.success(request, f"The sample store of {name} is {what}.")
        else:
            raise BadRequest("what must be on, off or purge", code="invalid")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("registry:model-detail", name=name)


@login_required
@require_GET
def sample_image(request: HttpRequest, name: str, sample_id: int) -> HttpResponse:
    sample = sample_store.sample_get(model=name, sample_id=sample_id)
    response = HttpResponse(sample_store.sample_bytes(sample), content_type=sample.content_type)
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@login_required
def version_preflight(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """GET: the version's pre-flight card (polls itself while the job runs). POST: start one."""
    if request.method == "POST":
        try:
            tasks.preflight_request(model_name=name, version=version, actor=actor_of(request))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("registry:version-detail", name=name, version=version)
    model = registry_selectors.model_state_get(name=name)
    run = preflight.preflight_latest(model_name=name, version=version)
    passed = preflight.preflight_passed(run, model.production_version) if run else None
    context = {
        "model": model,
        "version": version,
        "run": run,
        "passed": passed,
        "active": run is not None and run.status in preflight.ACTIVE,
        "limit": settings.PREFLIGHT_SAMPLES,
    }
    return render(request, "monitoring/partials/_preflight.html", context)


@login_required
def model_shadow(request: HttpRequest, name: str) -> HttpResponse:
    """GET: the model page's shadow card (agreement matrix). POST: start or stop the shadow."""
    model = registry_selectors.model_state_get(name=name)
    if request.method == "POST":
        try:
            if request.POST.get("what") == "stop":
                shadow.shadow_stop(model=name, actor=actor_of(request))
                messages.success(request, f"The shadow of {name} is stopped.")
            else:
                data = validated(ShadowInput, request.POST)
                shadow.shadow_start(model=name, actor=actor_of(request), **data)
                messages.success(
                    request, f"v{data['version']} now shadows {data['share']} % of live production traffic."
                )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("registry:model-detail", name=name)
    found = shadow.agreement(model=name)
    rows = [
        (label, [(n, label == column) for n, column in zip(counts, found.labels_shadow, strict=True)])
        for label, counts in zip(found.labels_production, found.matrix, strict=True)
    ]  # each cell: (count, whether the two answers are the same label)
    return render(
        request, "monitoring/partials/_shadow.html", {"model": model, "shadow": found, "rows": rows}
    )
