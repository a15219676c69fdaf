"""Ground truth: true labels sent back for predictions (by id), accuracy, per-class recall and confusion per
version over time, and an estimate of accuracy before the labels arrive.

The estimate is confidence-based performance estimation (CBPE): a version's accuracy over a window is
the expected share of correct answers, Σ P(correct | confidence) over its predictions. P(correct |
confidence) is calibrated per confidence bin on the version's *earlier* labelled predictions (only labels
of predictions made before the window begins, so an estimate never sees its own answers), shrunk towards
the bin's own confidence where labels are few; with no labels yet it is the raw confidence. Every
prediction counts, through the collected confidence histograms, not only the labelled ones: that is what
makes it an estimate *before* the labels, and what lets it follow a shift of the input mix that moves the
confidences. tests/monitoring/test_ground_truth.py bounds its error in simulation.

A detector's ground truth is boxes (the task says so: `Task.feedback`): the true boxes of the image, sent
with the boxes as answered, which the prediction id vouches for (modelspec.tasks.detection). Per version
and time bucket: precision and recall at IoU 0.5 of the boxes at the default cut, and mAP@0.5 and
mAP@0.5:0.95 by pycocotools (modelspec.detection_accuracy). There is no estimate before labels for a
detector: see NO_DETECTOR_ESTIMATE."""

from __future__ import annotations

import bisect
import functools
import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError, BadRequest
from core.roles import Permission, role_check, role_check_somewhere
from modelspec.boxes import Box, match
from modelspec.detection_accuracy import DetectionAccuracy, Labelled, detection_accuracy
from modelspec.metadata import ModelMetadata
from modelspec.tasks import Task, task_for
from modelspec.tasks.classification import label_of
from modelspec.tasks.detection import NO_OBJECT, XYXY, quoted_answer, truth_boxes
from registry import selectors as registry_selectors
from registry.selectors import model_state_get
from serving import prediction_ids
from serving import signal_catalogue as signals

from .choices import FeedbackItemStatus, FeedbackStatus
from .models import BoxFeedback, Feedback, MetricWindow

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

EDGES = np.array([0.0, *signals.CONFIDENCE.edges])  # the confidence histogram's bins, for calibration
PRIOR_WEIGHT = 5.0  # pseudo-predictions at the bin's own confidence: few labels move a bin little
MIN_LABELS = 30  # a window's real accuracy is shown (and its estimate's error) from this many labels
MIN_IMAGES = 30  # a time bucket's detector scores are shown from this many labelled images
BULK_MAX = 1000
DETECTOR_MATCHING = (
    "the answered boxes matched to the true ones per class at IoU ≥ 0.5 by COCO's rule (most confident "
    "first, each taking the unmatched true box of its class it overlaps most); mAP by pycocotools over the "
    "same boxes — those at the version's default cut, so the precision-recall curve stops there: compare "
    "versions answering at the same cut"
)
NO_DETECTOR_ESTIMATE = (
    "No estimate before labels for a detector. Recall and mAP cannot be read off the answers: an object "
    "the detector misses leaves no box and no confidence to go by. Precision alone could be estimated as a "
    "classifier's accuracy is, calibrating P(box right | confidence) on earlier labels, but shown alone it "
    "would look healthy exactly when a detector goes quiet (fewer, surer boxes) — so none is shown."
)


class FeedbackTooLate(ApplicationError):
    code = "feedback_too_late"
    http_status = 422


# --- receiving labels ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def metadata_of(model: str, version: int) -> ModelMetadata:
    """A version's metadata (a version never changes, so it is read once per process)."""
    return registry_selectors.version_metadata(name=model, version=version)


def labels_taken_since(now: datetime) -> datetime:
    """The oldest a prediction may be for its label to be taken (FEEDBACK_MAX_DELAY_DAYS before `now`)."""
    return now - timedelta(days=settings.FEEDBACK_MAX_DELAY_DAYS)


def too_late_rule() -> str:
    return f"labels are taken for {settings.FEEDBACK_MAX_DELAY_DAYS} days (FEEDBACK_MAX_DELAY_DAYS)"


class WrongFeedback(BadRequest):
    code = "wrong_feedback"


class AnswerMismatch(BadRequest):
    code = "answer_mismatch"


def _prediction(
    *, prediction_id: str, actor: User, now: datetime, feedback: str, permission: str
) -> tuple[prediction_ids.PredictionRef, ModelMetadata, Task]:
    """The prediction an id names, once the actor may label it (`permission`: sending feedback by the API,
    or labelling in the review queue), it is not too late, and the feedback is the kind its task takes
    ("label" or "boxes")."""
    role_check_somewhere(user=actor, permission=permission)
    ref = prediction_ids.read(prediction_id)
    role_check(user=actor, permission=permission, model_name=ref.model)
    if ref.at < labels_taken_since(now):
        raise FeedbackTooLate(
            f"the prediction was made {(now - ref.at).days} days ago; labels are taken for "
            f"{settings.FEEDBACK_MAX_DELAY_DAYS} days (FEEDBACK_MAX_DELAY_DAYS)"
        )  # spelled out, not too_late_rule(): docs/api.md's error table reads the message from here
    model_state_get(name=ref.model)
    metadata = metadata_of(ref.model, ref.version)
    task = task_for(metadata)
    if task.feedback != feedback:
        wanted = {
            "label": 'the true class: {"label": …}',
            "boxes": 'the true boxes with the answer\'s own: {"detections": …, "image": …, "truth": […]}',
        }[task.feedback]
        raise WrongFeedback(f"v{ref.version} of {ref.model} is a {task.name} model: send {wanted}")
    return ref, metadata, task


def feedback_record(
    *, prediction_id: str, label: str, actor: User, now: datetime | None = None,
    permission: str = Permission.FEEDBACK_SUBMIT,
) -> tuple[Feedback, str]:  # fmt: skip
    """Record the true label of a prediction: (the feedback, "recorded" | "unchanged" | "replaced")."""
    now = now or timezone.now()
    ref, metadata, _ = _prediction(
        prediction_id=prediction_id, actor=actor, now=now, feedback="label", permission=permission
    )
    labels = metadata.labels
    if not isinstance(label, str) or not label.strip() or len(label) > 200:
        raise BadRequest(
            "the label is the true class's name, as the model's labels spell it", code="invalid_label"
        )
    if labels and label not in labels:
        raise BadRequest(
            f"{label!r} is not one of v{ref.version}'s {len(labels)} labels (e.g. {', '.join(labels[:3])})",
            code="unknown_label",
        )
    predicted = label_of(metadata, ref.index)
    with transaction.atomic():
        found = Feedback.objects.select_for_update().filter(prediction_id=prediction_id).first()
        if found is None:
            found = Feedback.objects.create(
                prediction_id=prediction_id, model=ref.model, version=ref.version, stage=ref.stage,
                source=ref.source, predicted_index=ref.index, predicted_label=predicted,
                confidence=ref.confidence, true_label=label, correct=label == predicted, predicted_at=ref.at,
                labelled_at=now, labelled_by=actor,
            )  # fmt: skip
            return found, FeedbackStatus.RECORDED
        if found.true_label == label:
            return found, FeedbackStatus.UNCHANGED
        found.previous = [
            *found.previous,
            {"label": found.true_label, "at": found.labelled_at.isoformat(), "by": found.labelled_by_id},
        ]
        found.true_label, found.correct = label, label == found.predicted_label
        found.labelled_at, found.labelled_by = now, actor
        found.save()
        return found, FeedbackStatus.REPLACED


@dataclass(frozen=True)
class BoxFeedbackResult:
    """What became of a detector's truth, and how the answer fared against it (IoU ≥ 0.5)."""

    feedback: BoxFeedback
    status: str
    predicted_label: str  # the answer's headline: its most confident box's class, or "no object"
    true_label: str  # the truth in a few words: "2 cat, 1 dog" or "no object"
    matched: int
    precision: float | None  # None: the answer had no box
    recall: float | None  # None: no true box

    @property
    def correct(self) -> bool:
        """Every answered box matched a true box and every true box was found."""
        return self.matched == len(self.feedback.predicted) == len(self.feedback.truth)


def _in_words(boxes: list[Box]) -> str:
    counted = Counter(box.label for box in boxes)
    return ", ".join(f"{n} {label}" for label, n in counted.most_common()) or "no object"


def box_feedback_record(
    *, prediction_id: str, detections: list[dict[str, Any]], image: dict[str, int],
    truth: list[dict[str, Any]], actor: User, now: datetime | None = None,
    permission: str = Permission.FEEDBACK_SUBMIT,
) -> BoxFeedbackResult:  # fmt: skip
    """Record the true boxes of a detector's prediction. `detections` and `image` are the answer's as it
    was given; they must be what the prediction id vouches for (answer_mismatch otherwise), so nobody can
    send truth for boxes that were never answered. Appended: a later truth for the same prediction adds a
    row and counts from then on ("replaced"); the same truth again adds nothing ("unchanged")."""
    now = now or timezone.now()
    ref, metadata, task = _prediction(
        prediction_id=prediction_id, actor=actor, now=now, feedback="boxes", permission=permission
    )
    if ref.digest is None:
        raise WrongFeedback(
            "this prediction id was issued before ids vouched for a detector's boxes, so its boxes cannot "
            "be checked; send the truth of predictions made since"
        )
    answer = quoted_answer(detections, image, metadata)
    if not prediction_ids.vouches(ref, task.vouched(answer)):
        raise AnswerMismatch(
            "detections and image are not what was answered to this prediction: send the answer's "
            "detections and image as they came (asked at the version's default min_confidence or lower; "
            "boxes under it are left out), unchanged",
            extra={"fields": {"detections": ["not the boxes (or image) this prediction answered"]}},
        )
    true = truth_boxes(truth, image, metadata)
    predicted = sorted(answer["detections"], key=lambda d: -d["confidence"])
    stored_truth = [{"label": b.label, "box": dict(zip(XYXY, b.xyxy, strict=True))} for b in true]
    with transaction.atomic():
        latest = BoxFeedback.objects.select_for_update().filter(prediction_id=prediction_id).order_by("-id")
        found = latest.first()
        if found is not None and _canonical(found.truth) == _canonical(stored_truth):
            status = FeedbackStatus.UNCHANGED
        else:
            status = FeedbackStatus.RECORDED if found is None else FeedbackStatus.REPLACED
            found = BoxFeedback.objects.create(
                prediction_id=prediction_id, model=ref.model, version=ref.version, stage=ref.stage,
                source=ref.source, predicted_at=ref.at, image_width=image["width"], image_height=image["height"],
                predicted=predicted, truth=stored_truth, labelled_at=now, labelled_by=actor,
            )  # fmt: skip
    scored = match(true, _boxes(found.predicted))
    return BoxFeedbackResult(
        feedback=found, status=status,
        predicted_label="no object" if ref.index == NO_OBJECT else label_of(metadata, ref.index),
        true_label=_in_words(true), matched=len(scored.pairs),
        precision=len(scored.pairs) / len(scored.candidate) if scored.candidate else None,
        recall=len(scored.pairs) / len(scored.reference) if scored.reference else None,
    )  # fmt: skip


def _boxes(stored: list[dict[str, Any]]) -> list[Box]:
    return [Box(d["label"], d.get("confidence", 1.0), *(d["box"][k] for k in XYXY)) for d in stored]


def _canonical(truth: list[dict[str, Any]]) -> list[tuple]:
    return sorted((t["label"], *(t["box"][k] for k in XYXY)) for t in truth)


def feedback_bulk(*, items: list[dict[str, Any]], actor: User) -> list[dict[str, Any]]:
    """Many labels at once (a labelling tool's export): each item recorded on its own; the answer says,
    item by item, what happened or why it was refused."""
    role_check_somewhere(user=actor, permission=Permission.FEEDBACK_SUBMIT)  # each item: its model's
    if len(items) > BULK_MAX:
        raise BadRequest(f"at most {BULK_MAX} labels per request", code="too_many")
    results = []
    for item in items:
        try:
            if "label" in item:
                feedback, status = feedback_record(
                    prediction_id=item["prediction_id"], label=item["label"], actor=actor
                )
                correct = feedback.correct
            else:
                boxes = box_feedback_record(actor=actor, **item)
                status, correct = boxes.status, boxes.correct
        except ApplicationError as exc:
            results.append(
                {"prediction_id": item["prediction_id"], "status": FeedbackItemStatus.REFUSED,
                 "error": {"code": exc.code, "message": exc.message, **exc.extra}}
            )  # fmt: skip
        else:
            results.append({"prediction_id": item["prediction_id"], "status": status, "correct": correct})
    return results


# --- accuracy and its estimate --------------------------------------------------------------------


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _bin_of(confidence: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(EDGES, confidence, side="left") - 1, 0, len(EDGES) - 2)


def calibration(confidence: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """P(correct) per confidence bin from labelled predictions, shrunk to the bin's mid confidence."""
    bins = _bin_of(np.asarray(confidence, dtype=float))
    n = np.bincount(bins, minlength=len(EDGES) - 1).astype(float)
    k = np.bincount(bins, weights=np.asarray(correct, dtype=float), minlength=len(EDGES) - 1)
    mid = (EDGES[:-1] + EDGES[1:]) / 2
    return (k + PRIOR_WEIGHT * mid) / (n + PRIOR_WEIGHT)


def histogram_counts(bins: dict[str, float]) -> np.ndarray:
    """A collected confidence window ({le: count}) as counts over EDGES' bins."""
    counts = np.zeros(len(EDGES) - 1)
    for label, count in bins.items():
        upper = 1.0 if label == "+Inf" else float(label)
        counts[min(int(np.searchsorted(EDGES, upper, side="left")) - 1, len(counts) - 1)] += count
    return counts


def estimate(counts: np.ndarray, calibrated: np.ndarray) -> float | None:
    total = counts.sum()
    return float(counts @ calibrated / total) if total else None


@dataclass
class Point:
    """One time bucket of one version: labelled accuracy and the estimate."""

    start: datetime
    end: datetime
    labelled: int = 0
    correct: int = 0
    predictions: int = 0
    estimated: float | None = None
    calibration_labels: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled >= MIN_LABELS else None

    @property
    def error(self) -> float | None:
        if self.accuracy is None or self.estimated is None:
            return None
        return self.estimated - self.accuracy


@dataclass
class VersionPerformance:
    version: int
    points: list[Point]
    labelled: int = 0
    correct: int = 0
    predictions: int = 0
    estimated: float | None = None
    recall: list[tuple[str, int, float]] = field(default_factory=list)  # label, n, recall
    # Labels whose predictions the collected windows do not hold yet or at all: made after the last
    # collection (labels arrive at once, counts every MONITORING_COLLECT_SECONDS), or before the first.
    uncollected: int = 0
    collected_until: datetime | None = None
    confusion_labels: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)  # rows: true, columns: predicted

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def confusion_rows(self) -> list[tuple[str, list[tuple[int, bool]]]]:
        """Each true class with its counts per predicted class, marking the diagonal (right answers)."""
        return [
            (label, [(n, i == j) for j, n in enumerate(row)])
            for i, (label, row) in enumerate(zip(self.confusion_labels, self.confusion, strict=True))
        ]

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.correct, self.labelled)

    @property
    def error(self) -> float | None:
        if self.accuracy is None or self.estimated is None or self.labelled < MIN_LABELS:
            return None
        return self.estimated - self.accuracy


def _buckets(since: datetime, until: datetime, count: int) -> list[tuple[datetime, datetime]]:
    """`count` buckets over the span (fewer when that would make them narrower than a collection). The
    width is rounded to microseconds, so the last bucket takes the remainder instead of leaving a sliver
    of its own."""
    width = max((until - since) / count, timedelta(seconds=settings.MONITORING_COLLECT_SECONDS))
    n = max(1, math.ceil((until - since) / width - 1e-6))
    edges = [since + i * width for i in range(n)] + [until]
    return list(zip(edges[:-1], edges[1:], strict=True))


def performance(
    *, model: str, since: datetime, until: datetime, buckets: int = 24, top_classes: int = 8
) -> list[VersionPerformance]:
    """Per version seen in the span (live traffic): accuracy and its estimate per time bucket, and over
    the whole span; per-class recall and the confusion matrix of the labelled predictions."""
    spans = _buckets(since, until, buckets)
    windows = MetricWindow.live.filter(
        model=model, signal=signals.CONFIDENCE.name, end__gt=since, end__lte=until
    ).values_list("version", "start", "end", "bins")
    ends = [end for _, end in spans]
    counts: dict[int, np.ndarray] = defaultdict(lambda: np.zeros((len(spans), len(EDGES) - 1)))
    covered: dict[int, tuple[datetime, datetime]] = {}
    for version, start, end, bins in windows:
        counts[version][min(bisect.bisect_left(ends, end), len(spans) - 1)] += histogram_counts(bins)
        low, high = covered.get(version, (start, end))
        covered[version] = (min(low, start), max(high, end))
    labelled = Feedback.objects.filter(model=model, source=signals.Source.LIVE, predicted_at__lte=until)
    rows = list(
        labelled.order_by("predicted_at").values_list(
            "version", "predicted_at", "confidence", "correct", "true_label", "predicted_label"
        )
    )
    by_version: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        by_version[row[0]].append(row)
    versions = set(counts) | {v for v, rs in by_version.items() if rs[-1][1] > since}
    found = []
    for version in sorted(versions):
        result = _version_performance(
            version, spans, counts.get(version), by_version[version], since, top_classes
        )
        first, last = covered.get(version, (None, None))
        result.collected_until = last
        result.uncollected = sum(
            1
            for r in by_version[version]
            if r[1] > since and (first is None or last is None or not first < r[1] <= last)
        )
        found.append(result)
    return found


def _version_performance(
    version: int, spans: list[tuple[datetime, datetime]], counts: np.ndarray | None, rows: list[tuple],
    since: datetime, top_classes: int,
) -> VersionPerformance:  # fmt: skip
    times = [r[1] for r in rows]
    confidence = np.array([r[2] for r in rows], dtype=float)
    correct = np.array([r[3] for r in rows], dtype=float)
    points, all_counts, weighted = [], np.zeros(len(EDGES) - 1), 0.0
    for i, (start, end) in enumerate(spans):
        before = bisect.bisect_left(times, start)  # labels of predictions made before the bucket
        point = Point(start=start, end=end, calibration_labels=before)
        inside = rows[bisect.bisect_right(times, start) : bisect.bisect_right(times, end)]
        point.labelled, point.correct = len(inside), sum(1 for r in inside if r[3])
        if counts is not None:
            window = counts[i]
            point.predictions = int(window.sum())
            calibrated = calibration(confidence[:before], correct[:before])
            point.estimated = estimate(window, calibrated)
            if point.estimated is not None:
                all_counts += window
                weighted += point.estimated * window.sum()
        points.append(point)
    span_rows = rows[bisect.bisect_right(times, since) :]
    result = VersionPerformance(version=version, points=points)
    result.labelled, result.correct = len(span_rows), sum(1 for r in span_rows if r[3])
    result.predictions = int(all_counts.sum())
    result.estimated = weighted / all_counts.sum() if all_counts.sum() else None
    per_class: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in span_rows:
        per_class[r[4]][0] += 1
        per_class[r[4]][1] += int(bool(r[3]))
    result.recall = sorted(
        ((label, n, k / n) for label, (n, k) in per_class.items()), key=lambda x: (-x[1], x[0])
    )
    frequent = [label for label, _, _ in result.recall[:top_classes]]
    rest = len(per_class) > len(frequent) or any(r[5] not in frequent for r in span_rows)
    shown = frequent + (["other"] if rest else [])
    position = {label: i for i, label in enumerate(shown)}
    matrix = [[0] * len(shown) for _ in shown]
    for r in span_rows:
        true = position.get(r[4], position.get("other"))
        predicted = position.get(r[5], position.get("other"))
        if true is not None and predicted is not None:
            matrix[true][predicted] += 1
    result.confusion_labels, result.confusion = shown, matrix
    return result


def accuracy_now(
    *, model: str, version: int, start: datetime, end: datetime, estimated: bool
) -> tuple[float | None, int, int]:
    """A rule's reading over [start, end]: (accuracy or its estimate, predictions it stands on, labels
    behind it — the window's own for accuracy, the earlier ones calibrating an estimate)."""
    labelled = Feedback.objects.filter(model=model, version=version, source=signals.Source.LIVE)
    if not estimated:
        inside = labelled.filter(predicted_at__gt=start, predicted_at__lte=end)
        n = inside.count()
        return (inside.filter(correct=True).count() / n if n else None), n, n
    earlier = list(labelled.filter(predicted_at__lte=start).values_list("confidence", "correct"))
    calibrated = calibration(np.array([c for c, _ in earlier]), np.array([k for _, k in earlier]))
    counts = np.zeros(len(EDGES) - 1)
    for bins in MetricWindow.live.filter(
        model=model, version=version, signal=signals.CONFIDENCE.name, end__gt=start, end__lte=end
    ).values_list("bins", flat=True):
        counts += histogram_counts(bins)
    return estimate(counts, calibrated), int(counts.sum()), len(earlier)


# --- a detector's scores against the truth ---------------------------------------------------------


@dataclass
class BoxPoint:
    """One time bucket of one detector version: its labelled images and their scores (None below
    MIN_IMAGES labelled images: `note` says so)."""

    start: datetime
    end: datetime
    images: int = 0
    true_boxes: int = 0
    predicted_boxes: int = 0
    scores: DetectionAccuracy | None = None

    @property
    def enough(self) -> bool:
        return self.images >= MIN_IMAGES

    @property
    def note(self) -> str:
        if not self.images:
            return "no labels"
        if not self.enough:
            return f"too few labels: {self.images} labelled image{'s' if self.images != 1 else ''} ({MIN_IMAGES} needed)"
        return ""

    def score(self, name: str) -> float | None:
        value = getattr(self.scores, name) if self.scores is not None and self.enough else None
        return float(value) if value is not None else None


@dataclass
class DetectorPerformance:
    """A detector version's scores over a span: per bucket, and over the whole span."""

    version: int
    points: list[BoxPoint]
    total: BoxPoint

    @property
    def too_few(self) -> list[BoxPoint]:
        """The buckets with labels, but too few to score."""
        return [p for p in self.points if p.images and not p.enough]


def _labelled(row: BoxFeedback) -> Labelled:
    return Labelled(predicted=_boxes(row.predicted), truth=_boxes(row.truth))


def _scored(start: datetime, end: datetime, rows: list[BoxFeedback]) -> BoxPoint:
    point = BoxPoint(start=start, end=end, images=len(rows))
    point.true_boxes = sum(len(r.truth) for r in rows)
    point.predicted_boxes = sum(len(r.predicted) for r in rows)
    if rows:
        point.scores = detection_accuracy([_labelled(r) for r in rows])
    return point


def detector_performance(
    *, model: str, since: datetime, until: datetime, buckets: int = 24
) -> list[DetectorPerformance]:
    """Per detector version with live predictions labelled in the span (by when they were predicted):
    precision and recall at IoU 0.5 of the answered boxes (modelspec.boxes.match) and mAP@0.5 and
    mAP@0.5:0.95 (pycocotools) per time bucket and over the span; the latest truth of each prediction."""
    spans = _buckets(since, until, buckets)
    ends = [end for _, end in spans]
    latest: dict[str, BoxFeedback] = {}
    found = BoxFeedback.objects.filter(
        model=model, source=signals.Source.LIVE, predicted_at__gt=since, predicted_at__lte=until
    ).order_by("id")
    for row in found:
        latest[row.prediction_id] = row  # a later truth of the same prediction replaces the earlier
    by_version: dict[int, list[list[BoxFeedback]]] = defaultdict(lambda: [[] for _ in spans])
    for row in latest.values():
        by_version[row.version][min(bisect.bisect_left(ends, row.predicted_at), len(spans) - 1)].append(row)
    return [
        DetectorPerformance(
            version=version,
            points=[_scored(start, end, rows) for (start, end), rows in zip(spans, per_bucket, strict=True)],
            total=_scored(since, until, [r for rows in per_bucket for r in rows]),
        )
        for version, per_bucket in sorted(by_version.items())
    ]


def images_needed(min_samples: int) -> int:
    """How many labelled images a detector's rule stands on: its own min_samples, and never fewer than
    the chart shows a score from (MIN_IMAGES)."""
    return max(MIN_IMAGES, min_samples)


def detector_now(*, model: str, version: int, start: datetime, end: datetime) -> BoxPoint:
    """A rule's reading over [start, end]: the version's live predictions made in the window whose true
    boxes were sent back (the latest truth of each), scored as the chart scores a bucket."""
    latest: dict[str, BoxFeedback] = {}
    found = BoxFeedback.objects.filter(
        model=model,
        version=version,
        source=signals.Source.LIVE,
        predicted_at__gt=start,
        predicted_at__lte=end,
    ).order_by("id")
    for row in found:
        latest[row.prediction_id] = row
    return _scored(start, end, list(latest.values()))
