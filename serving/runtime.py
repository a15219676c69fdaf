"""Per-process serving state: routing snapshots (fresh within ROUTE_TTL), loaded versions, micro-batchers."""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future
from contextlib import contextmanager
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
    """Micro-batching for one loaded version. Queued requests are run in batches (up to max_batch, waiting at
    most max_wait for more) on the one-thread session by up to `workers` threads: the first takes any
    queued request; each further one joins only while a full batch is waiting, i.e. when inference is the
    bottleneck. onnxruntime releases the GIL, so batches run side by side on the cores while request
    threads decode the next images. A lone request (no other of this version being decoded, queued or
    run) runs inline on the all-cores session instead, for the lowest latency."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        name: str,
        version: int,
        max_batch: int,
        max_wait: float,
        workers: int = 1,
    ):
        self.model, self.name, self.version = model, name, str(version)
        self.max_batch, self.max_wait = max(1, min(max_batch, model.max_batch)), max_wait
        self._pending: deque = deque()
        self._changed = threading.Condition()
        self._busy = 0  # inferences in progress, inline or batched
        self._arrived = 0  # requests between arrival (before decoding) and inference
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, args=(n,), name=f"batcher-{name}-v{version}-{n}", daemon=True)
            for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    @contextmanager
    def admitted(self):
        """Count a request from its arrival, before decoding, until its inference is over."""
        with self._changed:
            self._arrived += 1
        try:
            yield
        finally:
            with self._changed:
                self._arrived -= 1

    def submit(self, tensor: np.ndarray, *, timeout: float = 30.0) -> tuple[np.ndarray, Timing]:
        future: Future = Future()
        with self._changed:
            # Greedy mode and a lone request (nothing running, queued or being decoded): run here on the
            # all-cores session and skip the hand-off. Under load every request goes to the batching
            # threads, so the all-cores session never competes with them (its idle threads spin).
            # With a batch wait configured, every request waits for company instead.
            inline = self.max_wait == 0 and self._arrived <= 1 and not self._busy and not self._pending
            if inline:
                self._busy += 1
            else:
                self._pending.append((tensor, future, time.perf_counter()))
                self._changed.notify_all()
        if not inline:
            return future.result(timeout=timeout)
        try:
            started = time.perf_counter()
            scores = self.model.run(tensor)
        finally:
            self._done()
        metrics.batch_size.labels(model=self.name, version=self.version).observe(1)
        return scores[0], Timing(queue=0.0, inference=time.perf_counter() - started)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def _done(self) -> None:
        with self._changed:
            self._busy -= 1

    def _take(self, worker: int) -> list:
        """Wait for work (a helper worker for a full batch waiting), then take one batch; [] when stopped."""
        wanted = 1 if worker == 0 else self.max_batch
        with self._changed:
            while len(self._pending) < wanted and not self._stopped:
                self._changed.wait()
            deadline = time.perf_counter() + self.max_wait
            while len(self._pending) < self.max_batch and not self._stopped:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            if self._stopped:
                return []
            batch = [self._pending.popleft() for _ in range(min(len(self._pending), self.max_batch))]
            if batch:
                self._busy += 1
            return batch

    def _work(self, worker: int) -> None:
        while not self._stopped:
            batch = self._take(worker)
            if not batch:
                continue
            started = time.perf_counter()
            try:
                scores = self.model.run(np.concatenate([tensor for tensor, _, _ in batch]), under_load=True)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for _, future, _ in batch:
                    future.set_exception(exc)
                continue
            finally:
                self._done()
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
