"""What MLflow cannot hold: the model's workflow state, its append-only promotion and configuration
histories, approvals."""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.history import (
    AppendOnly,
    AppendOnlyError,  # noqa: F401 - where callers first found it
)

from .choices import Action, ConfigAction, ConfigKind, RequestStatus, Stage


def canary_share(*, canary: int | None, weight: int, production: int | None) -> int:
    """The percent of traffic a canary really answers: its weight beside a production version, all of it
    while nothing is in production (there is no other version to route to). Routing (serving.routing)
    and every page and API answer that shows a canary read it here."""
    if canary is None:
        return 0
    return 100 if production is None else weight


class ModelState(models.Model):
    """One row per registered model: the lease that serializes its workflow, and a mirror of its aliases."""

    name = models.CharField(max_length=100, unique=True)
    staging_version = models.PositiveIntegerField(null=True, blank=True)
    canary_version = models.PositiveIntegerField(null=True, blank=True)
    canary_weight = models.PositiveSmallIntegerField(default=0)
    production_version = models.PositiveIntegerField(null=True, blank=True)
    # +1 on every workflow change: what a writer names (If-Match, expected_revision) to say which state
    # it decided on.
    revision = models.PositiveIntegerField(default=0)
    # The workflow's claim on the model while an action runs (registry.services._model_leased): a token and
    # when it lapses, so an action whose process died frees the model by itself.
    lease_token = models.CharField(max_length=32, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def holder(self, stage: str) -> int | None:
        return getattr(self, f"{stage}_version")

    @property
    def canary_effective_weight(self) -> int:
        return canary_share(
            canary=self.canary_version, weight=self.canary_weight, production=self.production_version
        )

    @property
    def canary_note(self) -> str:
        """Why the canary's share differs from its weight ("" when it does not)."""
        if self.canary_version is None or self.canary_effective_weight == self.canary_weight:
            return ""
        return (
            f"v{self.canary_version} answers all traffic because nothing is in production; its weight "
            f"({self.canary_weight} %) applies once a version is in production"
        )

    @property
    def etag(self) -> str:
        return f'"{self.revision}"'

    @property
    def aliases(self) -> dict[str, int]:
        return {stage: v for stage in Stage.values if (v := self.holder(stage)) is not None}


class ProductionRequest(models.Model):
    model = models.ForeignKey(ModelState, on_delete=models.PROTECT, related_name="production_requests")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    decision_reason = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(status=RequestStatus.PENDING),
                name="one_pending_production_request_per_model",
            )
        ]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version} → production ({self.status})"


class PromotionEvent(AppendOnly):
    """One workflow action, written in the same transaction as the state change it records. Never edited."""

    model = models.ForeignKey(ModelState, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=32, choices=Action.choices)
    stage = models.CharField(max_length=16, choices=Stage.choices, blank=True)
    version = models.PositiveIntegerField(null=True, blank=True)
    from_version = models.PositiveIntegerField(null=True, blank=True)
    to_version = models.PositiveIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    reason = models.TextField(blank=True)
    override = models.BooleanField(default=False)
    request = models.ForeignKey(
        ProductionRequest, on_delete=models.PROTECT, related_name="events", null=True, blank=True
    )
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "action", "created_at"])]

    def __str__(self) -> str:
        return f"{self.model.name}: {self.get_action_display()} v{self.version}"


class ConfigChange(AppendOnly):
    """One change of what people configure about a model — an alert rule, a silence, the canary plan, the
    sample policy, the shadow: who, when, what, before → after. Written by registry.config_history in
    the transaction of the change it records; never edited. Keyed by the model's name (the apps above
    keep theirs so); a silence of every model has none."""

    model_name = models.CharField(max_length=100, blank=True, help_text="empty: every model")
    kind = models.CharField(max_length=32, choices=ConfigKind.choices)
    subject = models.CharField(
        max_length=100, blank=True, help_text="which one (a rule's or a silence's id); empty: the model's own"
    )
    action = models.CharField(max_length=16, choices=ConfigAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model_name", "created_at"])]

    def __str__(self) -> str:
        which = f"{self.kind} #{self.subject}" if self.subject else self.kind
        return f"{self.model_name or 'every model'}: {which} {self.action}"

    @property
    def changes(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for each field that differs: the compact diff pages show."""
        before, after = self.before or {}, self.after or {}
        return [
            (key, before.get(key), after.get(key))
            for key in dict.fromkeys([*before, *after])
            if before.get(key) != after.get(key)
        ]
