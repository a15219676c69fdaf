"""Registry pages: parse the input as the API does, call the same services, redirect or show the refusal."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from core import roles
from core.api import parse_at
from core.exceptions import ApplicationError, BadRequest
from core.roles import Permission, actor_of
from modelspec.metadata import metadata_parse

from . import config_history, evidence, selectors, services
from .actions import ACTIONS, PAGE_ALIASES
from .choices import Action, Stage
from .forms import RegisterForm, initial_from
from .models import ModelState

MODELS_PER_PAGE = 50


@login_required
@require_GET
def model_list(request: HttpRequest) -> HttpResponse:
    """The models, searched by name, stage, tag and team, a page at a time."""
    template = "registry/partials/_model_rows.html" if request.htmx else "registry/model_list.html"  # type: ignore[attr-defined]
    search = {key: request.GET.get(key, "").strip() for key in ("q", "stage", "tag", "team")}
    error = ""
    try:
        found = selectors.model_search(**search)
        page = Paginator(found, MODELS_PER_PAGE).get_page(request.GET.get("page"))
        rows = selectors.model_summaries(list(page.object_list))
    except ApplicationError as exc:
        error, page, rows = exc.message, None, []
    user = request.user
    teams = roles.model_teams([row.model.name for row in rows])
    may_roll_back = {
        name for name, team in teams.items() if roles.can_in_team(user, Permission.ROLLBACK, team)
    }
    context = {
        "rows": rows, "may_roll_back": may_roll_back, "page": page, "search": search, "search_error": error,
        "searched": any(search.values()), "stages": selectors.STAGE_FILTERS,
        "query": urlencode({k: v for k, v in search.items() if v}),
    }  # fmt: skip
    return render(request, template, context)


def _model_context(model: ModelState, *, show_archived: bool = False) -> dict[str, Any]:
    context: dict[str, Any] = {
        "model": model,
        "events": selectors.event_list(model=model, limit=500),
        "config_changes": config_history.config_change_list(model_name=model.name, limit=20),
        "pending": selectors.pending_request(model=model),
        "rollback_to": selectors.rollback_target(model=model),
        "team": roles.model_team(model.name),
        "stages": Stage,
        "version_error": "",
        "rows": [],
        "archived_count": 0,
        "show_archived": show_archived,
    }
    if context["pending"] is not None:
        context["evidence"] = evidence.version_evidence(model=model, version=context["pending"].version)
        context["pending_event"] = context["pending"].events.filter(action=Action.PRODUCTION_REQUEST).first()
    try:
        rows = selectors.version_rows(model=model)
    except ApplicationError as exc:
        context["version_error"] = exc.message
    else:  # archived versions are listed only when asked for
        context["archived_count"] = sum(1 for row in rows if row.archived)
        context["rows"] = [row for row in rows if show_archived or not row.archived]
    return context


@login_required
@require_GET
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = selectors.model_state_get(name=name)
    context = _model_context(model, show_archived=request.GET.get("archived") == "1")
    return render(request, "registry/model_detail.html", context)


@login_required
@require_GET
def version_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    model = selectors.model_state_get(name=name)
    row = selectors.version_row(model=model, version=version)
    events = selectors.event_list(model=model).filter(version=version)
    served = selectors.ever_in_production(model=model, version=version)
    try:
        metadata = selectors.version_metadata(name=name, version=version)
    except ApplicationError:  # the page still shows the MLflow record and the history
        metadata = None
    return render(
        request,
        "registry/version_detail.html",
        {
            "model": model,
            "row": row,
            "metadata": metadata,
            "events": events,
            "pending": selectors.pending_request(model=model),
            "evidence": evidence.version_evidence(model=model, version=version),
            "may_edit": roles.can_in_team(request.user, Permission.REGISTER, roles.model_team(name)),
            "may_archive": not served  # (asked first: the page's queries do not depend on the version's stage)
            and not row.stages
            and not row.archived
            and roles.can_in_team(request.user, Permission.VERSION_ARCHIVE, roles.model_team(name)),
            "may_restore": row.archived is not None
            and roles.can_in_team(request.user, Permission.VERSION_RESTORE, roles.model_team(name)),
            "tag_lines": "\n".join(f"{k}={v}" for k, v in row.info.user_tags.items()),
        },
    )


def _tag_changes(text: str, current: dict[str, str]) -> dict[str, str | None]:
    """The form's tag lines (key=value; a tag left out is removed) as the changes to make."""
    wanted: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise BadRequest(f"tag line {number} is not key=value: {line[:60]!r}", code="invalid_tag")
        wanted[key.strip()] = value.strip()
    changes: dict[str, str | None] = {k: v for k, v in wanted.items() if current.get(k) != v}
    changes |= {k: None for k in current if k not in wanted}
    return changes


@login_required
@require_POST
def version_edit(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """The version page's form: its description and own tags, saved to MLflow and the history."""
    model = selectors.model_state_get(name=name)
    row = selectors.version_row(model=model, version=version)
    try:
        tags = _tag_changes(request.POST.get("tags", ""), row.info.user_tags)
        description = request.POST.get("description", "")
        services.version_edit(
            model_name=name, version=version, actor=actor_of(request), tags=tags,
            description=description if description != row.info.description else None,
        )  # fmt: skip
        messages.success(request, f"Saved v{version}'s description and tags.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("registry:version-detail", name=name, version=version)


@login_required
@require_GET
def production_at(request: HttpRequest, name: str) -> HttpResponse:
    model = selectors.model_state_get(name=name)
    try:
        context = {
            "model": model,
            "found": selectors.production_version_at(model=model, at=parse_at(request.GET.get("at"))),
        }
    except BadRequest as exc:
        context = {"model": model, "error": exc.message}
    return render(
        request, "registry/partials/_production_at.html", context, status=400 if "error" in context else 200
    )


@login_required
@require_POST
def model_action(request: HttpRequest, name: str, action: str) -> HttpResponse:
    """A workflow action by its name (registry.actions), its form parsed by the API's serializer."""
    found = ACTIONS.get(PAGE_ALIASES.get(action, action))
    if found is None:
        raise BadRequest(f"unknown action {action!r}", code="unknown_action")
    model = selectors.model_state_get(name=name)
    try:
        event = found.run(model_name=name, actor=actor_of(request), data=request.POST)
    except ApplicationError as exc:
        model.refresh_from_db()
        context = _model_context(model)
        context["action_error"] = exc
        return render(request, "registry/model_detail.html", context, status=exc.http_status)
    messages.success(request, found.done.format(version=event.version, weight=event.details.get("weight")))
    if event.stage == Stage.CANARY and event.model.canary_note:  # a first canary takes all traffic
        messages.warning(request, f"{event.model.canary_note}.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("registry:model-detail", args=[name])
    return redirect(target)


@login_required
def version_register(request: HttpRequest) -> HttpResponse:
    name = request.GET.get("model", "") if request.method == "GET" else request.POST.get("model_name", "")
    previous, notice = None, ""
    if name:
        try:
            previous = selectors.latest_metadata(name=name)
        except ApplicationError as exc:
            notice = f"The previous version's metadata could not be read ({exc.message}); check every field."
    started_from = initial_from(previous[1]) if previous is not None else {}
    form = RegisterForm(
        request.POST or None, request.FILES or None, initial={"model_name": name, **started_from}
    )
    for key, value in started_from.items():  # the page marks each field changed from the previous version
        form.fields[key].widget.attrs["data-previous"] = str(value)
    form.fields["team"].choices = [  # type: ignore[attr-defined]  # a ChoiceField
        ("", "—"),
        *((t, t) for t in selectors.registration_teams(actor_of(request))),
    ]
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                registered = services.version_register(
                    model_name=data["model_name"],
                    actor=actor_of(request),
                    metadata=metadata_parse(form.metadata_dict()),
                    onnx_file=data.get("file"),
                    source_uri=data["source_uri"],
                    description=data["description"],
                    dataset=services.dataset_named(data["dataset_name"], data["dataset_digest"]),
                    team=data["team"],
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
                for warning in registered.warnings:
                    messages.warning(request, f"Look: {warning}.")
                return redirect("registry:version-detail", name=info.name, version=info.version)
        else:
            status = 400
    context = {"form": form, "action": Action.REGISTER, "previous": previous, "notice": notice}
    return render(request, "registry/register.html", context, status=status)
