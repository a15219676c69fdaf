"""The configuration history of a model: the one recorder every writer of a model's configuration calls in
its own transaction (alert rules, silences, canary plans, sample policy, shadow), and its reads."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Model, Q, QuerySet

from .choices import ConfigAction, ConfigKind
from .models import ConfigChange

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def config_snapshot(obj: Model, fields: Iterable[str]) -> dict[str, Any]:
    """The named fields of a row (a related row by its id), as the history stores them: JSON values."""
    return _json({name: obj._meta.get_field(name).value_from_object(obj) for name in fields}) or {}  # type: ignore[union-attr]  # concrete fields only


def _json(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if values is None else json.loads(json.dumps(dict(values), cls=DjangoJSONEncoder))


def config_change_record(
    *,
    model_name: str,
    kind: ConfigKind | str,
    action: ConfigAction | str,
    actor: User | None,
    subject: str | int = "",
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> ConfigChange | None:
    """Record one change: called inside the writer's transaction.atomic(), so the change and its record
    commit or fail together. `before` / `after` are the changed thing's fields (None: it did not exist /
    no longer exists); an update that changes nothing is not recorded (None)."""
    if not connection.in_atomic_block:
        raise RuntimeError("a configuration change is recorded in the transaction of the change")
    if ConfigAction(action) == ConfigAction.UPDATED and _json(before) == _json(after):
        return None  # saved as it was: nothing to tell a reader of the history
    return ConfigChange.objects.create(
        model_name=model_name, kind=ConfigKind(kind), action=ConfigAction(action), actor=actor,
        subject=str(subject), before=_json(before), after=_json(after),
    )  # fmt: skip


def config_change_list(*, model_name: str, limit: int | None = None) -> QuerySet[ConfigChange]:
    """A model's configuration history, newest first: its own changes and those of silences that match
    every model (they mute its alerts too)."""
    found = (
        ConfigChange.objects.filter(Q(model_name=model_name) | Q(model_name=""))
        .select_related("actor")
        .order_by("-created_at", "-id")
    )
    return found[:limit] if limit else found
