"""The per-process cache of loaded versions: routing snapshots (fresh within SERVING_ROUTE_TTL_SECONDS),
each live version's session and batcher, loaded ahead of need and evicted least recently pinned first."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from modelspec.metadata import ModelMetadata, metadata_from_stored
from modelspec.onnx_runtime import LoadedModel
from registry import mlflow_gateway, selectors

from . import metrics
from .batching import Batcher
from .routing import Route

log = logging.getLogger(__name__)


@dataclass
class Served:
    name: str
    version: int
    metadata: ModelMetadata
    batcher: Batcher

    def label(self, index: int) -> str:
        labels = self.metadata.labels
        return labels[index] if index < len(labels) else f"class {index}"

    def class_metric_label(self, index: int) -> str:
        """The predicted-class label in metrics and baselines: tracked classes by name, else 'other'."""
        return self.label(index) if index in self.metadata.classes_by_name else "other"

    def warm_up(self, tensor: np.ndarray) -> None:
        """One inference on each of the version's sessions, so the first requests do not pay for
        onnxruntime's first-run allocations."""
        self.batcher.model.run(tensor)
        self.batcher.model.run(tensor, under_load=True)

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """The model's scores for one input as probabilities (softmax when the metadata says logits)."""
        if self.metadata.output != "logits":
            return scores
        shifted = np.exp(scores - scores.max())
        return shifted / shifted.sum()


class ModelCache:
    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._served: OrderedDict[tuple[str, int], Served] = OrderedDict()
        self._lock = threading.Lock()
        self._load_locks: dict[tuple[str, int], threading.Lock] = {}

    # --- routing ---------------------------------------------------------------------------
    def route(self, name: str) -> Route:
        now = time.monotonic()
        cached = self._routes.get(name)
        if cached is not None and now - cached.fetched < settings.SERVING_ROUTE_TTL_SECONDS:
            return cached
        model = selectors.model_state_get(name=name)
        fresh = Route(
            name=name,
            production=model.production_version,
            canary=model.canary_version,
            weight=model.canary_weight,
            rollback_to=selectors.rollback_target(model=model),
            fetched=now,
        )
        self._routes[name] = fresh
        if cached is None or cached.pinned != fresh.pinned:
            self._preload(fresh)
        return fresh

    def _preload(self, route: Route) -> None:
        """Load production, canary and the rollback target in the background, so a flip is instant."""
        missing = [v for v in route.pinned if (route.name, v) not in self._served]
        if missing:
            threading.Thread(target=self._load_quietly, args=(route.name, missing), daemon=True).start()

    def _load_quietly(self, name: str, versions: list[int]) -> None:
        from django.db import connection

        try:
            for version in versions:
                try:
                    self.served(name, version)
                except Exception as exc:  # noqa: BLE001 - the request path will report it
                    log.warning("preloading %s v%s failed: %s", name, version, exc)
        finally:
            connection.close()

    # --- loaded versions -------------------------------------------------------------------
    def served(self, name: str, version: int) -> Served:
        key = (name, version)
        found = self._served.get(key)
        if found is not None:
            return found
        with self._lock:
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        with load_lock:  # one download per version per process, however many requests ask
            found = self._served.get(key)
            if found is not None:
                return found
            started = time.perf_counter()
            model_bytes = mlflow_gateway.version_onnx_bytes(name=name, version=version)
            stored = mlflow_gateway.version_metadata(name=name, version=version)
            metadata = metadata_from_stored(stored)
            loaded = LoadedModel(
                model_bytes,
                threads=settings.SERVING_INTRA_OP_THREADS,
                batch_threads=settings.SERVING_BATCH_INTRA_OP_THREADS or None,
            )
            served = Served(
                name=name,
                version=version,
                metadata=metadata,
                batcher=Batcher(
                    loaded,
                    name=name,
                    version=version,
                    max_batch=settings.SERVING_BATCH_MAX,
                    max_wait=settings.SERVING_BATCH_WAIT_MS / 1000,
                    workers=settings.SERVING_BATCH_WORKERS,
                ),
            )
            metrics.model_load_seconds.labels(model=name).observe(time.perf_counter() - started)
            metrics.model_loaded.labels(model=name, version=str(version)).set(1)
            with self._lock:
                self._served[key] = served
                self._evict()
            return served

    def _evict(self) -> None:
        pinned = {(r.name, v) for r in self._routes.values() for v in r.pinned}
        extra = [key for key in self._served if key not in pinned]
        while len(self._served) > settings.SERVING_MAX_LOADED and extra:
            key = extra.pop(0)
            served = self._served.pop(key)
            served.batcher.stop()
            metrics.model_loaded.labels(model=key[0], version=str(key[1])).set(0)

    def loaded(self) -> list[tuple[str, int]]:
        return list(self._served)


_cache: ModelCache | None = None
_cache_lock = threading.Lock()


def model_cache() -> ModelCache:
    global _cache
    if _cache is None:
        with _cache_lock:
            if _cache is None:
                _cache = ModelCache()
    return _cache


def model_cache_reset() -> None:
    """Drop every loaded version (tests point the process at a new MLflow store)."""
    global _cache
    with _cache_lock:
        if _cache is not None:
            for served in _cache._served.values():
                served.batcher.stop()
        _cache = None
