"""Baselines: what a version's inputs and answers look like on the reference image set, binned exactly
as serving bins them, or a production window adopted as the new normal."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.conf import settings
from prometheus_client.utils import floatToGoString

from controlplane.exceptions import BadRequest
from registry import roles
from registry.choices import Action
from serving import metrics, preprocessing
from serving.runtime import runtime
from serving.samples import reference_set

from .models import Baseline
from .selectors import windows_sum

HISTOGRAM_EDGES = {
    "confidence": metrics.CONFIDENCE_BUCKETS,
    "brightness": metrics.UNIT_BUCKETS,
    "contrast": metrics.UNIT_BUCKETS,
    "sharpness": metrics.SHARPNESS_BUCKETS,
    "aspect_ratio": metrics.ASPECT_BUCKETS,
}


def _bin_label(value: float, edges) -> str:
    """The 'le' label of the bucket a value falls in — the same label Prometheus exposes."""
    for edge in edges:
        if value <= edge:
            return floatToGoString(edge)
    return "+Inf"


def baseline_from_reference(*, model_name: str, version: int) -> Baseline:
    """Run the version on the reference images, through the same preprocessing serving uses."""
    served = runtime().served(model_name, version)
    signals: dict[str, dict] = defaultdict(lambda: {"bins": defaultdict(float), "total": 0.0, "sum": 0.0})

    def add(signal: str, label: str, value: float = 0.0) -> None:
        entry = signals[signal]
        entry["bins"][label] += 1
        entry["total"] += 1
        entry["sum"] += value

    images = reference_set()
    for sample in images:
        prepared = preprocessing.prepare(sample.data, served.metadata, max_pixels=settings.SERVING_MAX_PIXELS)
        scores = served.probabilities(served.batcher.model.run(prepared.tensor)[0])
        top = int(np.argmax(scores))
        stats = prepared.stats
        add("confidence", _bin_label(float(scores[top]), HISTOGRAM_EDGES["confidence"]), float(scores[top]))
        for signal, value in (
            ("brightness", stats.brightness),
            ("contrast", stats.contrast),
            ("sharpness", stats.sharpness),
            ("aspect_ratio", stats.aspect_ratio),
        ):
            add(signal, _bin_label(value, HISTOGRAM_EDGES[signal]), value)
        add("classes", served.class_metric_label(top))
        add("shapes", f"{metrics.size_label(stats.width, stats.height)}|{metrics.mode_label(stats.mode)}")
    return Baseline.objects.create(
        model=model_name,
        version=version,
        source="reference",
        signals={k: {**v, "bins": dict(v["bins"])} for k, v in signals.items()},
        samples=len(images),
        reason=f"{len(images)} reference images",
    )


def baselines_ensure() -> list[Baseline]:
    """Build the reference baseline of every registered version that has none (idempotent; a beat task
    right after registration, so each version has its reference before it ever takes traffic)."""
    from registry.choices import Action
    from registry.models import PromotionEvent

    made = []
    registered = PromotionEvent.objects.filter(action=Action.REGISTER).values_list("model__name", "version")
    have = set(Baseline.objects.values_list("model", "version"))
    for model_name, version in sorted(set(registered) - have):
        made.append(baseline_from_reference(model_name=model_name, version=version))
    return made


def baseline_adopt_window(*, model_name: str, version: int, start, end, actor, reason: str = "") -> Baseline:
    """Take what production saw in [start, end] as the version's new normal (operators re-baseline
    after a deliberate change, e.g. a new camera)."""
    roles.role_check(user=actor, action=Action.ROLLBACK)  # operators and admins, as for silencing alerts
    signals = windows_sum(model=model_name, version=version, stage="production", start=start, end=end)
    samples = int(signals.get("confidence", {}).get("total", 0))
    if samples == 0:
        raise BadRequest("no production predictions of this version in that window", code="empty_window")
    return Baseline.objects.create(
        model=model_name,
        version=version,
        source="window",
        window_start=start,
        window_end=end,
        signals=signals,
        samples=samples,
        created_by=actor,
        reason=reason,
    )


def baseline_current(*, model_name: str, version: int) -> Baseline | None:
    return Baseline.objects.filter(model=model_name, version=version).first()
