"""What the apps above monitoring add to its pages, registered in their ready() as registry.evidence is,
so monitoring never imports them: judgements beside production's (releases' canary against production),
sections of a model's monitoring page (its canary analyses) and forms of its settings page (its canary
plan)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.http import QueryDict

    from registry.models import ModelState


@dataclass(frozen=True)
class Judgement:
    """One pair the monitoring page shows as judged (production against its baseline, the canary
    against production), as its latest judgement saw it."""

    pair: str
    verdict: str  # drift / ok / not enough data (rules); pass / hold / fail (canary); "not judged yet"
    enough: bool
    # what was counted: (label, how many, how many are needed, of what: "prediction", or "box" for a
    # detector's box signals)
    sides: list[tuple[str, int, int, str]]
    at: datetime | None
    bad: bool = False  # the verdict is a failure: drift, a failed canary


Judge = Callable[["ModelState"], Judgement | None]
_judges: list[Judge] = []


def judgement_provider(judge: Judge) -> Judge:
    """Add a pair the monitoring page shows as judged (an app's ready() calls this)."""
    if judge not in _judges:
        _judges.append(judge)
    return judge


def judgements(model: ModelState) -> list[Judgement]:
    return [found for judge in _judges if (found := judge(model)) is not None]


@dataclass(frozen=True)
class PageSection:
    """A section of a model's monitoring page: its template, and its context for a model up to a time."""

    template: str
    context: Callable[[str, datetime], dict[str, Any]]


_sections: list[PageSection] = []


def model_page_section(section: PageSection) -> None:
    """Add a section to every model's monitoring page (an app's ready() calls this)."""
    if section not in _sections:
        _sections.append(section)


def model_page_sections() -> list[PageSection]:
    return list(_sections)


@dataclass(frozen=True)
class SettingsForm:
    """A form of a model's settings page, posted with `what`: its template and context (read by all),
    and what saving does (the service checks the role; returns the message shown)."""

    what: str
    template: str
    context: Callable[[str], dict[str, Any]]
    save: Callable[[str, User, QueryDict], str]


_forms: dict[str, SettingsForm] = {}


def settings_form(form: SettingsForm) -> None:
    """Add a form to every model's settings page (an app's ready() calls this)."""
    _forms[form.what] = form


def settings_forms() -> dict[str, SettingsForm]:
    return dict(_forms)
