"""Teams and what they own: the data behind team-scoped roles (core.roles reads it). A team is a group of
people, each holding roles in it; a model belongs to at most one team, named by the model's name (the
name MLflow and every app use), so the kernel needs no import of the registry. And the stored answers
of API writes sent with an Idempotency-Key (core.idempotency)."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from .choices import TEAM_ROLES, Role

TEAM_SLUG_RE = r"^[a-z0-9][a-z0-9_-]{0,49}$"


class Team(models.Model):
    slug = models.CharField(
        max_length=50,
        unique=True,
        validators=[RegexValidator(TEAM_SLUG_RE, "lower-case letters, digits, '-' and '_'")],
        help_text="what OIDC_ROLE_MAP (role@slug) and the API name the team by",
    )
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class TeamMembership(models.Model):
    """One role a user holds for the models of one team (a user may hold several, in several teams)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_roles")
    role = models.CharField(max_length=16, choices=[(r.value, r.label) for r in Role if r in TEAM_ROLES])

    class Meta:
        ordering = ["team__slug", "role"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user", "role"], name="one_role_once_per_team")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.role}@{self.team.slug}"


class ModelOwnership(models.Model):
    """The team a model belongs to. A model without a row belongs to no team: only roles for all models
    govern it."""

    model_name = models.CharField(max_length=100, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="models")
    assigned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model_name"]

    def __str__(self) -> str:
        return f"{self.model_name} → {self.team.slug}"


class IdempotencyRecord(models.Model):
    """The stored answer to a write sent with an Idempotency-Key, replayed when the client retries."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="one_idempotency_key_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
