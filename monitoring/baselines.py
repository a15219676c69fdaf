"""Baselines: what a version's inputs and answers look like on the reference image set, binned exactly
as serving bins them, or a production window adopted as the new normal."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.exceptions import BadRequest
from core.roles import Permission, role_check
from modelspec.signals import observations
from registry.choices import Stage
from registry.selectors import registered_versions
from serving import inference
from serving import signal_catalogue as signals
from serving.model_cache import model_cache
from serving.reference_photos import reference_set

from .choices import BaselineSource
from .models import Baseline, stats_version_now
from .selectors import windows_sum

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def baseline_from_reference(*, model_name: str, version: int, reason: str = "") -> Baseline:
    """Run the version on the reference images, through the same preprocessing serving uses."""
    served = model_cache().served(model_name, version)
    counted: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"bins": defaultdict(float), "total": 0.0, "sum": 0.0}
    )

    def add(signal: signals.Signal, label: str, value: float = 0.0) -> None:
        entry = counted[signal.name]
        entry["bins"][label] += 1
        entry["total"] += 1
        entry["sum"] += value

    images = reference_set()
    task = served.task
    for sample in images:
        found = inference.answer_unrecorded(served, sample.data)
        stats = found.stats
        assert stats is not None  # a fresh answer always carries its input's statistics
        for signal, value in zip(
            task.signals, task.signal_values(found.answer, served.metadata), strict=True
        ):
            for observed in observations(value):
                if signal.numeric:
                    add(signal, signal.bin_label(float(observed)), float(observed))
                else:
                    add(signal, str(observed))
        for signal in signals.IMAGE_SIGNALS:
            value = getattr(stats, signal.name)
            add(signal, signal.bin_label(value), value)
        add(signals.SHAPES, signals.shape_category(stats.width, stats.height, stats.mode))
    return Baseline.objects.create(
        model=model_name,
        version=version,
        source=BaselineSource.REFERENCE,
        signals={k: {**v, "bins": dict(v["bins"])} for k, v in counted.items()},
        samples=len(images),
        reason=reason or f"{len(images)} reference images",
    )


def baselines_ensure() -> list[Baseline]:
    """Build the reference baseline of every registered version that has none of the current image
    statistics (idempotent; a beat task right after registration, so each version has its reference
    before it ever takes traffic). A version whose baselines measured the statistics another way gets a
    new reference baseline: the old ones stay in its history, out of force."""
    made = []
    current = stats_version_now()
    have = set(Baseline.objects.filter(stats_version=current).values_list("model", "version"))
    older = set(Baseline.objects.exclude(stats_version=current).values_list("model", "version"))
    for model_name, version in sorted(registered_versions() - have):
        reason = (
            f"rebuilt from the reference images for image statistics v{current}"
            if (model_name, version) in older
            else ""
        )
        made.append(baseline_from_reference(model_name=model_name, version=version, reason=reason))
    return made


def baseline_adopt_window(
    *, model_name: str, version: int, start: datetime, end: datetime, actor: User, reason: str = ""
) -> Baseline:
    """Take what production saw in [start, end] as the version's new normal (operators re-baseline
    after a deliberate change, e.g. a new camera)."""
    role_check(user=actor, permission=Permission.BASELINE_ADOPT, model_name=model_name)
    counted = windows_sum(model=model_name, version=version, stage=Stage.PRODUCTION, start=start, end=end)
    samples = signals.predictions(counted)
    if samples == 0:
        raise BadRequest("no production predictions of this version in that window", code="empty_window")
    return Baseline.objects.create(
        model=model_name,
        version=version,
        source=BaselineSource.WINDOW,
        window_start=start,
        window_end=end,
        signals=counted,
        samples=samples,
        created_by=actor,
        reason=reason,
    )
