"""Per-process serving state: routing snapshots (fresh within ROUTE_TTL), loaded versions, micro-batchers."""

from __future__ import annotations

import hashlib
import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from registry import mlflow_gateway, selectors
from registry.metadata import ModelMetadata, metadata_from_stored

from . import metrics
from .onnx_runtime import LoadedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    name: str
    production: int | None
    canary: int | None
    weight: int
    rollback_to: int | None
    fetched: float

    @property
    def pinned(self) -> set[int]:
        return {v for v in (self.production, self.canary, self.rollback_to) if v is not None}

    def stage_of(self, version: int) -> str:
        if version == self.production:
            return "production"
        if version == self.canary:
            return "canary"
        return "pinned"

    def choose(self, routing_key: str | None) -> tuple[int | None, str]:
        """Weighted split; a routing key hashes to a stable bucket so one client sees one version."""
        if self.canary is None or self.weight <= 0:
            return self.production, "production"
        if routing_key:
            bucket = (
                int.from_bytes(hashlib.blake2b(f"{self.name}:{routing_key}".encode(), digest_size=4).digest())
                % 100
            )
        else:
            bucket = random.randrange(100)
        if bucket < self.weight or self.production is None:
            return self.canary, "canary"
        return self.production, "production"


@dataclass
class Timing:
    queue: float = 0.0
    inference: float = 0.0


class Batcher:
    """One worker thread per loaded version: takes every queued request (up to max_batch, waiting at most
    max_wait for more) and runs them as one batch. onnxruntime releases the GIL, so request threads keep
    decoding while a batch runs, and at most one inference per version competes for the cores."""

    def __init__(self, model: LoadedModel, *, name: str, version: int, max_batch: int, max_wait: float):
        self.model, self.name, self.version = model, name, str(version)
        self.max_batch, self.max_wait = max(1, min(max_batch, model.max_batch)), max_wait
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=f"batcher-{name}-v{version}", daemon=True)
        self._stopped = False
        self._running = threading.Lock()  # one inference per version at a time, inline or batched
        self._thread.start()

    def submit(self, tensor: np.ndarray, *, timeout: float = 30.0) -> tuple[np.ndarray, Timing]:
        # Greedy mode, nothing running and nothing queued: run here and skip the hand-off to the
        # batching thread. (With a batch wait configured, every request waits for company instead.)
        if self.max_wait == 0 and self._queue.empty() and self._running.acquire(blocking=False):
            try:
                if self._queue.empty():
                    started = time.perf_counter()
                    scores = self.model.run(tensor)
                    metrics.batch_size.labels(model=self.name, version=self.version).observe(1)
                    return scores[0], Timing(queue=0.0, inference=time.perf_counter() - started)
            finally:
                self._running.release()
        future: Future = Future()
        self._queue.put((tensor, future, time.perf_counter()))
        return future.result(timeout=timeout)

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(None)

    def _collect(self) -> list:
        first = self._queue.get()
        if first is None:
            return []
        batch = [first]
        deadline = time.perf_counter() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                remaining = deadline - time.perf_counter()
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._stopped = True
                break
            batch.append(item)
        return batch

    def _work(self) -> None:
        while not self._stopped:
            batch = self._collect()
            if not batch:
                break
            with self._running:
                started = time.perf_counter()
                try:
                    scores = self.model.run(
                        np.concatenate([tensor for tensor, _, _ in batch]), under_load=True
                    )
                except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                    for _, future, _ in batch:
                        future.set_exception(exc)
                    continue
                inference = time.perf_counter() - started
            metrics.batch_size.labels(model=self.name, version=self.version).observe(len(batch))
            for row, (_, future, queued) in enumerate(batch):
                future.set_result((scores[row], Timing(queue=started - queued, inference=inference)))


@dataclass
class Served:
    name: str
    version: int
    metadata: ModelMetadata
    batcher: Batcher
    tracked_classes: frozenset[int]

    def label(self, index: int) -> str:
        labels = self.metadata.labels
        return labels[index] if index < len(labels) else f"class {index}"

    def class_metric_label(self, index: int) -> str:
        """The predicted-class label in metrics and baselines: tracked classes by name, else 'other'."""
        return self.label(index) if index in self.tracked_classes else "other"

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """The model's scores for one input as probabilities (softmax when the metadata says logits)."""
        if self.metadata.output != "logits":
            return scores
        shifted = np.exp(scores - scores.max())
        return shifted / shifted.sum()


class Runtime:
    def __init__(self):
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
                ),
                tracked_classes=frozenset(
                    stored.get("tracked_classes") or range(min(len(metadata.labels), 50))
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

    def forget_routes(self) -> None:
        self._routes.clear()


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _runtime = Runtime()
    return _runtime


def runtime_reset() -> None:
    """Drop every loaded version (tests point the process at a new MLflow store)."""
    global _runtime
    with _runtime_lock:
        if _runtime is not None:
            for served in _runtime._served.values():
                served.batcher.stop()
        _runtime = None
