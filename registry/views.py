"""Registry pages: parse the form, call the same services as the API, redirect or show the refusal."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from controlplane.exceptions import ApplicationError, BadRequest
from registry.api.views import parse_at

from . import selectors, services
from .choices import Action, Stage
from .forms import RegisterForm
from .metadata import metadata_parse


@login_required
@require_GET
def model_list(request):
    models = list(selectors.model_state_list())
    last = selectors.last_event_by_model()
    rows = [
        {
            "model": m,
            "last_event": last.get(m.id),
            "rollback_to": selectors.rollback_target(model=m),
            "pending": selectors.pending_request(model=m),
        }
        for m in models
    ]
    template = "registry/partials/_model_rows.html" if request.htmx else "registry/model_list.html"
    return render(request, template, {"rows": rows})


def _model_context(model, *, version_error: str = "") -> dict:
    context = {
        "model": model,
        "events": selectors.event_list(model=model, limit=500),
        "pending": selectors.pending_request(model=model),
        "rollback_to": selectors.rollback_target(model=model),
        "stages": Stage,
        "version_error": version_error,
        "rows": [],
    }
    try:
        context["rows"] = selectors.version_rows(model=model)
    except ApplicationError as exc:
        context["version_error"] = exc.message
    return context


@login_required
@require_GET
def model_detail(request, name: str):
    model = selectors.model_state_get(name=name)
    return render(request, "registry/model_detail.html", _model_context(model))


@login_required
@require_GET
def version_detail(request, name: str, version: int):
    model = selectors.model_state_get(name=name)
    row = selectors.version_row(model=model, version=version)
    events = selectors.event_list(model=model).filter(version=version)
    return render(
        request,
        "registry/version_detail.html",
        {"model": model, "row": row, "events": events, "pending": selectors.pending_request(model=model)},
    )


@login_required
@require_GET
def production_at(request, name: str):
    model = selectors.model_state_get(name=name)
    try:
        found = selectors.production_version_at(model=model, at=parse_at(request.GET.get("at")))
        context = {"model": model, "found": found}
    except BadRequest as exc:
        context = {"model": model, "error": exc.message}
    return render(
        request, "registry/partials/_production_at.html", context, status=400 if "error" in context else 200
    )


def _int(value, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a whole number") from None


ACTIONS = {
    "staging": lambda name, p, actor: services.version_stage_staging(
        model_name=name, version=_int(p.get("version"), "version"), actor=actor, reason=p.get("reason", "")
    ),
    "canary": lambda name, p, actor: services.canary_start(
        model_name=name,
        version=_int(p.get("version"), "version"),
        weight=p.get("weight"),
        actor=actor,
        reason=p.get("reason", ""),
        override=p.get("override") == "on",
    ),
    "weight": lambda name, p, actor: services.canary_set_weight(
        model_name=name, weight=p.get("weight"), actor=actor, reason=p.get("reason", "")
    ),
    "abort": lambda name, p, actor: services.canary_abort(
        model_name=name, actor=actor, reason=p.get("reason", "")
    ),
    "request": lambda name, p, actor: services.production_request(
        model_name=name,
        version=_int(p.get("version"), "version"),
        actor=actor,
        reason=p.get("reason", ""),
        override=p.get("override") == "on",
    ),
    "approve": lambda name, p, actor: services.production_approve(
        model_name=name, actor=actor, reason=p.get("reason", "")
    ),
    "reject": lambda name, p, actor: services.production_reject(
        model_name=name, actor=actor, reason=p.get("reason", "")
    ),
    "rollback": lambda name, p, actor: services.production_rollback(
        model_name=name, actor=actor, reason=p.get("reason", "")
    ),
}

DONE = {
    "staging": "v{version} is now in staging.",
    "canary": "v{version} is now the canary.",
    "weight": "The canary weight is now {weight} %.",
    "abort": "The canary was aborted.",
    "request": "Production requested for v{version}; an approver must decide.",
    "approve": "Approved: v{version} is in production.",
    "reject": "The production request for v{version} was rejected.",
    "rollback": "Rolled back: v{version} is in production again.",
}


@login_required
@require_POST
def model_action(request, name: str, action: str):
    if action not in ACTIONS:
        raise BadRequest(f"unknown action {action!r}")
    model = selectors.model_state_get(name=name)
    try:
        result = ACTIONS[action](name, request.POST, request.user)
    except ApplicationError as exc:
        model.refresh_from_db()
        context = _model_context(model)
        context["action_error"] = exc
        return render(request, "registry/model_detail.html", context, status=exc.http_status)
    version = getattr(result, "version", None)
    weight = (getattr(result, "details", None) or {}).get("weight")
    messages.success(request, DONE[action].format(version=version, weight=weight))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("registry:model-detail", args=[name])
    return redirect(target)


@login_required
def version_register(request):
    form = RegisterForm(
        request.POST or None, request.FILES or None, initial={"model_name": request.GET.get("model", "")}
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                registered = services.version_register(
                    model_name=form.cleaned_data["model_name"],
                    actor=request.user,
                    metadata=metadata_parse(form.metadata_dict()),
                    onnx_bytes=form.cleaned_data["file"].read() if form.cleaned_data.get("file") else None,
                    source_uri=form.cleaned_data["source_uri"],
                    description=form.cleaned_data["description"],
                    dataset=(
                        form.cleaned_data["dataset_name"] or "dataset",
                        form.cleaned_data["dataset_digest"],
                    )
                    if form.cleaned_data["dataset_digest"]
                    else None,
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
                status = exc.http_status
            else:
                info = registered.version
                messages.success(
                    request,
                    f"Registered {info.name} v{info.version} (checked: input {list(registered.check.input_shape)}, "
                    f"test inference {registered.check.test_inference_ms:.1f} ms).",
                )
                return redirect("registry:version-detail", name=info.name, version=info.version)
        else:
            status = 400
    return render(request, "registry/register.html", {"form": form, "action": Action.REGISTER}, status=status)
