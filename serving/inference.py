"""The inference seam: image bytes → a version's answer, in the steps every path shares — prepare (decode
and preprocess per the version's metadata) → run (micro-batched, inline, or in the caller's thread) →
decode (the version's task) → signals (the image statistics and the task's answer signals, into the
metrics). `answer` is the call for a chosen version: the shadow uses it, and so can pre-flight replays,
baselines and INT8 comparisons; `serving.services.predict` routes a request, then calls `infer_version`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from prometheus_client import Histogram

from core import reporting
from core.exceptions import ApplicationError, BadRequest
from modelspec.boxes import Placement
from modelspec.metadata import ModelMetadata
from modelspec.signals import observations
from modelspec.tasks import Answer

from . import metrics, prediction_cache
from . import signal_catalogue as signals
from .batching import Timing
from .model_cache import Served, model_cache
from .preprocessing import ImageRejected, ImageStats, Prepared, prepare
from .signal_catalogue import Source


class InferenceFailed(ApplicationError):
    code = "inference"
    http_status = 500


@dataclass(slots=True)
class Inference:
    """One input answered by one version."""

    answer: Answer  # the task's fields of the JSON answer
    stats: ImageStats | None  # the input's statistics (None: a cache entry older than keeping them)
    seconds: float  # from the request's start to the answer
    cached: bool
    served: Served  # the version that answered: its metadata and task


def prepare_input(data: bytes, metadata: ModelMetadata) -> Prepared:
    """Decode and preprocess per a version's metadata (loaded or not: an INT8 build prepares its source's
    inputs): ImageRejected for a bad image, BadRequest (`preprocess`) for anything else that fails."""
    try:
        return prepare(
            data,
            metadata,
            max_pixels=settings.SERVING_MAX_PIXELS,
            margin=settings.SERVING_DECODE_MARGIN,
        )
    except ImageRejected:
        raise
    except Exception as exc:
        raise BadRequest(f"the image could not be preprocessed: {exc}", code="preprocess") from exc


def run(served: Served, tensor: np.ndarray, *, background: bool = False) -> tuple[Any, Timing]:
    """The model's raw output for one input: batched with other requests, or inline when alone; background
    work (a shadow's answer) runs in the calling thread and yields to live traffic (serving/shadow.py)."""
    try:
        if background:
            return served.batcher.run_here(tensor)
        return served.batcher.submit(tensor)
    except Exception as exc:
        raise InferenceFailed(f"inference failed: {exc}") from exc


def decode(served: Served, raw: Any, placement: Placement | None) -> Answer:
    return served.task.decode(raw, served.metadata, placement)


def observe(labels: dict[str, str], served: Served, answer: Answer, stats: ImageStats | None) -> None:
    """The answer's signals (the task's, e.g. confidence and predicted class) and the input's image
    statistics: the same for an answer from the model and one from the cache, so repeats count as the live
    traffic they are in drift, canary analysis and accuracy (cvcp_requests_total{outcome="cached"} still
    tells them apart)."""
    task = served.task
    for signal, value in zip(task.signals, task.signal_values(answer, served.metadata), strict=True):
        metric = metrics.answer_signals[signal.name]
        for observed in observations(value):
            if isinstance(metric, Histogram):
                metric.labels(**labels).observe(float(observed))
            else:
                metric.labels(**labels, **{signal.categories[0]: str(observed)}).inc()
    if stats is None:  # cached before answers kept their input's statistics
        return
    for image_signal in signals.IMAGE_SIGNALS:
        metrics.image_stats[image_signal.name].labels(**labels).observe(getattr(stats, image_signal.name))
    metrics.input_shapes.labels(
        **labels, size=signals.size_label(stats.width, stats.height), mode=signals.mode_label(stats.mode)
    ).inc()


def infer(
    served: Served, data: bytes, *, labels: dict[str, str], started: float, use_cache: bool, background: bool
) -> Inference:
    """Answer from the cache, or prepare → run → decode; either way record the signals and the outcome
    (the recording runs before the answer goes out, on purpose: docs/serving.md, "Processes")."""
    use_cache = use_cache and settings.SERVING_CACHE_ENABLED
    lookup = prediction_cache.lookup(served.name, served.version, data) if use_cache else None
    if lookup is not None and lookup.answer is not None:
        return _from_cache(served, lookup.answer, lookup.stats, labels=labels, started=started)
    metrics.cache_lookups.labels(**labels, result=lookup.result if lookup else "miss").inc()
    found = _from_model(served, data, labels=labels, started=started, background=background)
    if lookup is not None and lookup.result != "error" and found.stats is not None:  # (stats: always, here)
        prediction_cache.store(lookup.key, found.answer, found.stats)
    return found


def _from_cache(
    served: Served, answer: Answer, stats: ImageStats | None, *, labels: dict[str, str], started: float
) -> Inference:
    metrics.cache_lookups.labels(**labels, result="hit").inc()
    metrics.requests.labels(**labels, outcome="cached").inc()
    observe(labels, served, answer, stats)
    total = time.perf_counter() - started
    metrics.latency.labels(**labels, phase="total").observe(total)
    return Inference(answer, stats, total, True, served)


def _from_model(
    served: Served, data: bytes, *, labels: dict[str, str], started: float, background: bool
) -> Inference:
    with served.batcher.admitted():
        try:
            prepared = prepare_input(data, served.metadata)
            preprocessed = time.perf_counter()
            scores, timing = run(served, prepared.tensor, background=background)
        except ApplicationError as exc:
            refused = isinstance(exc, ImageRejected)
            metrics.requests.labels(**labels, outcome="refused" if refused else "error").inc()
            raise
    answer = decode(served, scores, prepared.placement)
    total = time.perf_counter() - started
    metrics.latency.labels(**labels, phase="preprocess").observe(preprocessed - started)
    metrics.latency.labels(**labels, phase="queue").observe(timing.queue)
    metrics.latency.labels(**labels, phase="inference").observe(timing.inference)
    metrics.latency.labels(**labels, phase="total").observe(total)
    observe(labels, served, answer, prepared.stats)
    metrics.requests.labels(**labels, outcome="ok").inc()
    return Inference(answer, prepared.stats, total, False, served)


def answer_unrecorded(served: Served, data: bytes) -> Inference:
    """prepare → run → decode in the calling thread, recorded nowhere: what a version answers on images
    that are not traffic (a baseline's reference images). Its signals: `served.task.signal_values`."""
    started = time.perf_counter()
    prepared = prepare_input(data, served.metadata)
    scores, _ = run(served, prepared.tensor, background=True)
    answer = decode(served, scores, prepared.placement)
    return Inference(answer, prepared.stats, time.perf_counter() - started, False, served)


def infer_version(
    *, model_name: str, version: int, stage: str, data: bytes, source: str, use_cache: bool, started: float
) -> Inference:
    """One version's answer, labelled in the metrics with its stage and traffic source."""
    reporting.context(model=model_name, version=version, stage=stage, source=source)
    served = model_cache().served(model_name, version)
    labels = {"model": model_name, "version": str(version), "stage": stage, "source": source}
    return infer(
        served, data, labels=labels, started=started, use_cache=use_cache, background=source == Source.SHADOW
    )


def answer(*, model_name: str, version: int, data: bytes, source: str, use_cache: bool = False) -> Inference:
    """A chosen version's answer to one input (a shadow's, a replay's, a comparison's), recorded in the
    metrics under its traffic source. Never offered to the sample store or the shadow, and no prediction
    id: nobody is handed this answer to send feedback on."""
    started = time.perf_counter()
    stage = model_cache().route(model_name).stage_of(version)
    return infer_version(
        model_name=model_name, version=version, stage=stage, data=data, source=source, use_cache=use_cache,
        started=started,
    )  # fmt: skip
