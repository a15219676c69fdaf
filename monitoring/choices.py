"""Named constants of monitoring: drift verdicts, alert states, severities and trail actions,
review actions, baseline sources."""

from django.db import models


class Verdict(models.TextChoices):
    """A drift score's verdict."""

    DRIFT = "drift", "Drift"
    OK = "ok", "OK"
    NOT_ENOUGH_DATA = "not enough data", "Not enough data"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class AlertState(models.TextChoices):
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class AlertEventAction(models.TextChoices):
    """What an alert's trail records: state changes by rules or Alertmanager, and people's review."""

    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    WORSE = "worse", "Got worse while snoozed"
    RESOLVED = "resolved", "Resolved"
    REOPENED = "reopened", "Fired again: reopened"
    SILENCED = "silenced", "Notification muted by a silence"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    SNOOZED = "snoozed", "Snoozed"
    ASSIGNED = "assigned", "Assigned"
    COMMENTED = "commented", "Commented"
    REBASELINED = "rebaselined", "Re-baselined"


class WebhookOutcome(models.TextChoices):
    """How one attempt at posting an alert's change to its rule's webhook ended."""

    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused: the address is not allowed, or the name does not resolve"


class ReviewAction(models.TextChoices):
    """What a person may do to an alert (the alert page's and the services' names)."""

    ACKNOWLEDGE = "acknowledge", "Acknowledge"
    SNOOZE = "snooze", "Snooze"
    ASSIGN = "assign", "Assign"
    COMMENT = "comment", "Comment"
    RESOLVE = "resolve", "Resolve"
    REBASELINE = "rebaseline", "Re-baseline"


class BaselineSource(models.TextChoices):
    REFERENCE = "reference", "Reference image set"
    WINDOW = "window", "Adopted production window"


class Performance(models.TextChoices):
    """What alert rules can watch beside the drift of a signal: a score in [0, 1] from ground truth
    (monitoring/ground_truth.py), judged with the method BELOW. Which a model accepts is its task's
    (modelspec Task.performance): a classifier's accuracy, from labels sent back or estimated from
    confidences; a detector's scores of the true boxes sent back."""

    ACCURACY = "accuracy", "Accuracy (from labels sent back)"
    ESTIMATED_ACCURACY = "estimated_accuracy", "Accuracy estimated from confidences"
    PRECISION = "precision", "Box precision at IoU 0.5 (from true boxes sent back)"
    RECALL = "recall", "Box recall at IoU 0.5 (from true boxes sent back)"
    MAP50 = "map50", "mAP@0.5 (from true boxes sent back)"
    MAP50_95 = "map50_95", "mAP@0.5:0.95 (from true boxes sent back)"


# A detector's scores: computed over the labelled images of a window (ground_truth.MIN_IMAGES at least).
PER_IMAGE = frozenset({Performance.PRECISION, Performance.RECALL, Performance.MAP50, Performance.MAP50_95})


BELOW = "below"  # the rule's method for a performance signal: alert when the value falls under the threshold


class FeedbackStatus(models.TextChoices):
    """What became of a label sent back for a prediction."""

    RECORDED = "recorded", "Recorded"
    UNCHANGED = "unchanged", "The same label was already recorded"
    REPLACED = "replaced", "Replaced an earlier label (kept in the record)"


class QueueAction(models.TextChoices):
    """What a reviewer did with a stored input in the review queue."""

    LABELLED = "labelled", "Labelled"
    SKIPPED = "skipped", "Skipped"
    RETURNED = "returned", "Brought back to the queue"


class QueueStatus(models.TextChoices):
    """Where a stored input stands in the review queue."""

    QUEUED = "queued", "Queued"
    LABELLED = "labelled", "Labelled"
    SKIPPED = "skipped", "Skipped"
    UNLABELLABLE = "unlabellable", "Stored before ids were kept: cannot be labelled"
    EXPIRED = "expired", "Too old to label (FEEDBACK_MAX_DELAY_DAYS)"


class FeedbackItemStatus(models.TextChoices):
    """One item of a bulk feedback request."""

    RECORDED = "recorded", "Recorded"
    UNCHANGED = "unchanged", "The same label was already recorded"
    REPLACED = "replaced", "Replaced an earlier label"
    REFUSED = "refused", "Refused (see its error)"


BOT = "canary-analysis"  # the user automatic actions are taken as (releases/canary.py); never an assignee
