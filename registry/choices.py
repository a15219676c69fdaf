"""Named constants of the registry: stages (the MLflow alias strings), workflow actions, request states."""

from django.db import models


class Stage(models.TextChoices):
    STAGING = "staging", "Staging"
    CANARY = "canary", "Canary"
    PRODUCTION = "production", "Production"


class Action(models.TextChoices):
    REGISTER = "register", "Registered"
    PROMOTE_STAGING = "promote_staging", "Promoted to staging"
    CANARY_START = "canary_start", "Canary started"
    CANARY_WEIGHT = "canary_weight", "Canary weight changed"
    CANARY_ABORT = "canary_abort", "Canary aborted"
    PRODUCTION_REQUEST = "production_request", "Production requested"
    PRODUCTION_APPROVE = "production_approve", "Approved to production"
    PRODUCTION_REJECT = "production_reject", "Production request rejected"
    ROLLBACK = "rollback", "Rolled back"
    VERSION_ARCHIVE = "version_archive", "Archived"
    VERSION_RESTORE = "version_restore", "Restored from the archive"


# Actions after which the production alias points somewhere new.
PRODUCTION_CHANGING = (Action.PRODUCTION_APPROVE, Action.ROLLBACK)


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


class ConfigKind(models.TextChoices):
    """What a configuration change is about: the things people set about a model besides its stages."""

    ALERT_RULE = "alert_rule", "Alert rule"
    SILENCE = "silence", "Silence"
    CANARY_PLAN = "canary_plan", "Canary plan"
    SAMPLE_POLICY = "sample_policy", "Sample policy"
    SHADOW = "shadow", "Shadow"
    VERSION = "version", "Version description and tags"


class ConfigAction(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Updated"
    DELETED = "deleted", "Deleted"
    EXPIRED = "expired", "Expired"
    STARTED = "started", "Started"
    STOPPED = "stopped", "Stopped"
