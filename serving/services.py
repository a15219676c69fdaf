"""Prediction: route a request to a version, answer it through the inference seam (serving/inference.py),
hand live production answers to the sample store and the shadow, and wrap the answer in its envelope."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from core.exceptions import ApplicationError, BadRequest, Conflict, ServiceUnavailable
from registry.choices import Stage
from registry.selectors import model_state_list

from . import prediction_ids, sample_store, shadow
from . import signal_catalogue as signals
from .inference import Inference, InferenceFailed, infer_version
from .model_cache import DatabaseUnavailable, model_cache, probe_image
from .prediction_cache import cache_breaker
from .preprocessing import prepare
from .routing import Route

__all__ = [
    "InferenceFailed",
    "NoModelLive",
    "answers_compare",
    "cache_breaker",
    "predict",
    "readiness",
    "warm_up",
]

log = logging.getLogger(__name__)


class NoModelLive(ServiceUnavailable):
    code = "no_model"


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


def predict(
    *,
    model_name: str,
    data: bytes,
    routing_key: str | None = None,
    version: int | None = None,
    stage: str | None = None,
    source: str = signals.Source.LIVE,
    use_cache: bool = True,
    min_confidence: float | None = None,
) -> dict:
    """Route, answer (from the cache or the model, recorded in the metrics under its traffic source), offer
    a live production answer to the sample store and the shadow, and wrap it in its envelope.
    `min_confidence`: the request's own cut of a detector's boxes (the metrics, the sample store and the
    shadow always see the version's default cut); a classifier's answer has no cut."""
    started = time.perf_counter()
    chosen, stage = _pick(
        model_cache().route(model_name), version=version, stage=stage, routing_key=routing_key
    )
    found = infer_version(
        model_name=model_name, version=chosen, stage=stage, data=data, source=source, use_cache=use_cache,
        started=started,
    )  # fmt: skip
    envelope = _envelope(found, model=model_name, version=chosen, stage=stage, source=source)
    if source == signals.Source.LIVE and stage == Stage.PRODUCTION:
        # the id goes with the stored input (a string passed on), so a reviewer can label it later
        _offer(found, model=model_name, version=chosen, data=data, prediction_id=envelope["prediction_id"])
    shown = found.served.task.respond(found.answer, min_confidence=min_confidence)
    return {**shown, **envelope, "cached": found.cached}


class TasksDiffer(Conflict):
    code = "tasks_differ"


def answers_compare(*, model_name: str, first: dict, second: dict) -> dict[str, Any]:
    """How `second` differs from `first`, two of `predict`'s answers of one model to one input, as their
    task pairs them (Task.paired, `first` as the reference), with what the tester draws of them."""
    tasks = [model_cache().served(model_name, answer["model_version"]).task for answer in (first, second)]
    if tasks[0].name != tasks[1].name:
        raise TasksDiffer(
            f"v{first['model_version']} does {tasks[0].name} and v{second['model_version']} "
            f"{tasks[1].name}: their answers cannot be compared"
        )
    return {"display": tasks[0].display, **tasks[0].paired(first, second)}


def _offer(found: Inference, *, model: str, version: int, data: bytes, prediction_id: str) -> None:
    """Both only queue, never wait; an answer from the cache is counted, never queued."""
    if found.cached:
        sample_store.offer_repeat(model=model)
        shadow.offer_repeat(model=model, production_version=version)
        return
    served = found.served
    sample_store.offer(
        model=model, data=data, version=version, answer=found.answer, task=served.task,
        metadata=served.metadata, stats=found.stats, prediction_id=prediction_id,
    )  # fmt: skip
    shadow.offer(
        model=model, data=data, production_version=version, production=found.answer, task=served.task
    )


def _envelope(found: Inference, *, model: str, version: int, stage: str, source: str) -> dict:
    task = found.served.task
    headline = task.headline(found.answer)
    prediction_id = prediction_ids.issue(
        model=model,
        version=version,
        stage=stage,
        source=source,
        index=headline.index,
        confidence=headline.confidence,
        vouched=task.vouched(found.answer),
    )
    return {
        "prediction_id": prediction_id,
        "latency_ms": round(found.seconds * 1000, 3),
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
