"""Prediction: route, check the cache, decode + preprocess, batch inference, answer and record metrics."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pybreaker
from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError

from core import reporting
from core.exceptions import ApplicationError, BadRequest, ServiceUnavailable
from registry.choices import Stage
from registry.selectors import model_state_list

from . import metrics, prediction_ids, sample_store, shadow, signals
from .model_cache import DatabaseUnavailable, Served, model_cache, probe_image
from .preprocessing import ImageRejected, ImageStats, Prepared, prepare
from .routing import Route

TOP_K = 5

log = logging.getLogger(__name__)


# A cache that failed (Redis down, or hung until its socket timeout) is left alone for a while: requests
# answer without it instead of each paying the timeout.
cache_breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=settings.SERVING_CACHE_RETRY_SECONDS)


class NoModelLive(ServiceUnavailable):
    code = "no_model"


class InferenceFailed(ApplicationError):
    code = "inference"
    http_status = 500


def _pick(
    route: Route, *, version: int | None, stage: str | None, routing_key: str | None
) -> tuple[int, str]:
    if version is not None:
        return version, route.stage_of(version)
    if stage:
        if stage not in (Stage.PRODUCTION, Stage.CANARY):
            raise BadRequest("stage must be 'production' or 'canary'", code="bad_request")
        chosen = route.production if stage == Stage.PRODUCTION else route.canary
        if chosen is None:
            raise NoModelLive(f"{route.name} has no {stage} version")
        return chosen, stage
    chosen, stage = route.choose(routing_key)
    if chosen is None:
        raise NoModelLive(f"{route.name} has no version in production; promote one first")
    return chosen, stage


def _observe_image(labels: dict[str, str], stats: ImageStats) -> None:
    for signal in signals.IMAGE_SIGNALS:
        metrics.image_stats[signal.name].labels(**labels).observe(getattr(stats, signal.name))
    metrics.input_shapes.labels(
        **labels, size=signals.size_label(stats.width, stats.height), mode=signals.mode_label(stats.mode)
    ).inc()


def _observe_answer(labels: dict[str, str], served: Served, answer: dict, stats: ImageStats | None) -> None:
    """The answer's signals (confidence, predicted class, the input's image statistics): the same for an
    answer from the model and one from the cache, so repeats count as the live traffic they are in drift,
    canary analysis and accuracy (cvcp_requests_total{outcome="cached"} still tells them apart)."""
    metrics.confidence.labels(**labels).observe(answer["confidence"])
    top1 = answer["top_k"][0]["index"]
    metrics.predicted_class.labels(**labels, **{"class": served.class_metric_label(top1)}).inc()
    if stats is not None:  # None: cached before answers kept their input's statistics
        _observe_image(labels, stats)


STATS = "_input"  # the cache entry's copy of the input's ImageStats (never part of an answer)


def _answer(served: Served, probabilities: np.ndarray) -> dict:
    order = np.argsort(probabilities)[::-1][:TOP_K]
    top = [
        {"index": int(i), "label": served.label(int(i)), "confidence": float(probabilities[i])} for i in order
    ]
    return {"label": top[0]["label"], "confidence": top[0]["confidence"], "top_k": top}


def _prepare(data: bytes, served: Served, labels: dict) -> Prepared:
    try:
        return prepare(
            data,
            served.metadata,
            max_pixels=settings.SERVING_MAX_PIXELS,
            margin=settings.SERVING_DECODE_MARGIN,
        )
    except ImageRejected:
        metrics.requests.labels(**labels, outcome="refused").inc()
        raise
    except Exception as exc:
        metrics.requests.labels(**labels, outcome="error").inc()
        raise BadRequest(f"the image could not be preprocessed: {exc}", code="preprocess") from exc


def predict(
    *,
    model_name: str,
    data: bytes,
    routing_key: str | None = None,
    version: int | None = None,
    stage: str | None = None,
    source: str = signals.Source.LIVE,
    use_cache: bool = True,
) -> dict:
    """Route, answer from the cache or run the model, and record the answer in the metrics (labelled with
    its traffic source) and the cache. The recording runs before the answer goes out, on purpose
    (docs/serving.md, "Processes")."""
    started = time.perf_counter()
    route = model_cache().route(model_name)
    chosen, stage = _pick(route, version=version, stage=stage, routing_key=routing_key)
    reporting.context(model=model_name, version=chosen, stage=stage, source=source)
    served = model_cache().served(model_name, chosen)
    labels = {"model": model_name, "version": str(chosen), "stage": stage, "source": source}
    cache = caches[settings.SERVING_CACHE_ALIAS]
    lookup, cached = "miss", None
    use_cache = use_cache and settings.SERVING_CACHE_ENABLED
    if use_cache:  # the key hashes the whole upload: 0.7 ms for a 12 MP photo, spent only when it is used
        cache_key = f"pred:{model_name}:{chosen}:{hashlib.sha256(data).hexdigest()}"
        try:
            cached = cache_breaker.call(cache.get, cache_key)
        except Exception as exc:  # noqa: BLE001 - a cache outage (Redis down or hung) costs speed, not answers
            if not isinstance(exc, pybreaker.CircuitBreakerError):
                log.warning("prediction cache unavailable, answering without it: %s", exc)
            lookup = "error"
    if cached is not None:
        raw_stats = cached.pop(STATS, None)
        stats = ImageStats(**raw_stats) if isinstance(raw_stats, dict) else None
        metrics.cache_lookups.labels(**labels, result="hit").inc()
        metrics.requests.labels(**labels, outcome="cached").inc()
        _observe_answer(labels, served, cached, stats)
        if source == signals.Source.LIVE and stage == Stage.PRODUCTION:  # counted, never queued
            sample_store.offer_repeat(model=model_name)
            shadow.offer_repeat(model=model_name, production_version=chosen)
        total = time.perf_counter() - started
        metrics.latency.labels(**labels, phase="total").observe(total)
        return {**cached, **_envelope(model_name, chosen, stage, total, source, cached), "cached": True}
    metrics.cache_lookups.labels(**labels, result=lookup).inc()
    with served.batcher.admitted():
        prepared = _prepare(data, served, labels)
        preprocessed = time.perf_counter()
        try:
            if source == signals.Source.SHADOW:  # yields to live traffic (serving/shadow.py)
                scores, timing = served.batcher.run_here(prepared.tensor)
            else:
                scores, timing = served.batcher.submit(prepared.tensor)
        except Exception as exc:
            metrics.requests.labels(**labels, outcome="error").inc()
            raise InferenceFailed(f"inference failed: {exc}") from exc
    probabilities = served.probabilities(scores)
    answer = _answer(served, probabilities)
    total = time.perf_counter() - started
    metrics.latency.labels(**labels, phase="preprocess").observe(preprocessed - started)
    metrics.latency.labels(**labels, phase="queue").observe(timing.queue)
    metrics.latency.labels(**labels, phase="inference").observe(timing.inference)
    metrics.latency.labels(**labels, phase="total").observe(total)
    _observe_answer(labels, served, answer, prepared.stats)
    top1 = answer["top_k"][0]["index"]
    metrics.requests.labels(**labels, outcome="ok").inc()
    if use_cache and lookup != "error":
        entry = {**answer, STATS: dataclasses.asdict(prepared.stats)}
        try:
            cache_breaker.call(cache.set, cache_key, entry, timeout=settings.SERVING_CACHE_TTL_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the answer stands; the next identical input recomputes
            if not isinstance(exc, pybreaker.CircuitBreakerError):
                log.warning("prediction cache unavailable, answer not stored: %s", exc)
    if source == signals.Source.LIVE and stage == Stage.PRODUCTION:  # both only queue, never wait
        label, confidence = answer["label"], answer["confidence"]
        sample_store.offer(
            model=model_name, data=data, version=chosen, label=label, confidence=confidence,
            stats=prepared.stats, tracked_class=served.class_metric_label(top1),
        )  # fmt: skip
        shadow.offer(model=model_name, data=data, production_version=chosen, production_label=label)
    return {**answer, **_envelope(model_name, chosen, stage, total, source, answer), "cached": False}


def _envelope(model: str, version: int, stage: str, seconds: float, source: str, answer: dict) -> dict:
    top = answer["top_k"][0]
    prediction_id = prediction_ids.issue(
        model=model,
        version=version,
        stage=stage,
        source=source,
        index=top["index"],
        confidence=top["confidence"],
    )
    return {
        "prediction_id": prediction_id,
        "latency_ms": round(seconds * 1000, 3),
        "model_version": version,
        "stage": stage,
        "source": source,
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def readiness(*, model_name: str | None = None) -> dict[str, dict[str, Any]]:
    """Each live model's readiness in this process (or one model's): its production version loaded and a
    real inference answered. Waits for a load in flight at most SERVING_READINESS_TIMEOUT_SECONDS (a
    promoted canary or a rollback target is loaded already: the flip does not make a process unready); a
    version still loading, or whose load failed, is reported with the cause. While the database cannot
    be read, the models are those this process routes already, each marked with how old its routes are
    (it keeps serving them: a database outage must not take every serving node out of the balancer)."""
    probe = probe_image()
    checked: dict[str, dict[str, Any]] = {}
    for name, version in _live_production(model_name):
        started = time.perf_counter()
        try:
            route = model_cache().route(name)
            served = model_cache().served(name, version, wait=settings.SERVING_READINESS_TIMEOUT_SECONDS)
            prepared = prepare(probe, served.metadata, max_pixels=settings.SERVING_MAX_PIXELS)
            served.batcher.submit(prepared.tensor, timeout=settings.SERVING_READINESS_TIMEOUT_SECONDS)
        except ApplicationError as exc:
            checked[name] = {"version": version, "ready": False, "code": exc.code, "reason": exc.message}
        except Exception as exc:  # noqa: BLE001 - a failing probe must say why
            reason = f"readiness inference failed: {type(exc).__name__}: {exc}"
            checked[name] = {"version": version, "ready": False, "code": "inference", "reason": reason}
        else:
            ms = round((time.perf_counter() - started) * 1000, 2)
            checked[name] = {"version": version, "ready": True, "inference_ms": ms}
            if route.stale_since is not None:
                checked[name]["routes_stale_s"] = round(time.monotonic() - route.stale_since, 1)
    return checked


def _live_production(model_name: str | None) -> list[tuple[str, int]]:
    """(model, production version) of every live model, or of one; from this process's routes while the
    database cannot be read."""
    try:
        live = model_state_list().exclude(production_version=None)
        if model_name is not None:
            live = live.filter(name=model_name)
        return [
            (name, version) for name, version in live.values_list("name", "production_version") if version
        ]
    except DatabaseError as exc:
        log.warning("readiness: the database cannot be read, checking the routes held: %s", exc)
        routes = model_cache().routes_known()
        if not routes:  # a process started during the outage knows no model to serve
            raise DatabaseUnavailable(
                "the control plane's database is unreachable and this process holds no routes yet",
                extra={"retry_after": 1},
            ) from exc
        return [(r.name, r.production) for r in routes if r.production and model_name in (None, r.name)]


_warming = threading.Event()


def warming() -> bool:
    """True while this process's start-up warm-up runs (`warm_up_background`)."""
    return _warming.is_set()


def warm_up_background() -> threading.Thread:
    """Warm up without holding up start-up: the server answers /healthz at once and /readyz says when
    the live versions are loaded."""

    def run() -> None:
        from django.db import connection

        started = time.perf_counter()
        try:
            loaded = warm_up()
            log.info("warm-up: %s in %.1f s", loaded or "no live model", time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - the process serves pages; models load on first use
            log.warning("warm-up failed, models load on first request: %s", exc)
        finally:
            _warming.clear()
            connection.close()

    _warming.set()
    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()
    return thread


def warm_up() -> dict[str, list[int]]:
    """Load every live version (production, canary, rollback target) into this process, each with one
    inference run, waiting for the loads: run in the background at start (controlplane/serve.py), so that
    no dependency holds up start-up and /readyz says when the process is warm."""
    loads = {}
    live = model_state_list().exclude(production_version=None, canary_version=None)
    for name in live.values_list("name", flat=True):
        for version in sorted(model_cache().route(name).pinned):
            try:
                loads[(name, version)] = model_cache().load_start(name, version)
            except ApplicationError as exc:  # failed within its back-off: retried in the background
                log.warning("warm-up: %s v%s not loaded: %s", name, version, exc.message)
    loaded: dict[str, list[int]] = {}
    for (name, version), future in loads.items():
        try:
            if future is not None:
                future.result()
        except Exception as exc:  # noqa: BLE001 - remembered by the cache, retried in the background
            log.warning("warm-up: %s v%s not loaded: %s", name, version, exc)
        else:
            loaded.setdefault(name, []).append(version)
    return loaded
