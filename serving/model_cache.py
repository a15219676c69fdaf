"""The per-process cache of loaded versions: routing snapshots (fresh within SERVING_ROUTE_TTL_SECONDS),
each live version's session and batcher, loaded ahead of need, and versions no longer live evicted oldest
first. How a slow or failing registry is kept away from requests: ModelCache's docstring."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import DatabaseError
from PIL import Image

from core.exceptions import ApplicationError, ServiceUnavailable
from modelspec.metadata import ModelMetadata
from modelspec.onnx_runtime import LoadedModel
from modelspec.tasks import Task, task_for
from registry import selectors

from . import metrics
from .batching import Batcher
from .preprocessing import prepare
from .routing import Route

log = logging.getLogger(__name__)


@dataclass
class Served:
    name: str
    version: int
    metadata: ModelMetadata
    batcher: Batcher
    task: Task = field(init=False)  # what the version does: how its outputs decode and answers compare
    session_ms: dict[str, float] = field(default_factory=dict)  # warm_up's measure of its two sessions

    def __post_init__(self) -> None:
        self.task = task_for(self.metadata)

    def warm_up(self, tensor: np.ndarray) -> None:
        """Inferences on each of the version's sessions, so the first requests do not pay for onnxruntime's
        first-run allocations; lone requests are then answered by the faster of the two
        (LoadedModel.lone_session_choose)."""
        self.batcher.model.run(tensor)
        self.batcher.model.run(tensor, under_load=True)
        self.session_ms = self.batcher.model.lone_session_choose(tensor)
        if self.session_ms:
            log.info(
                "%s v%s answers lone requests on %s (ms per inference: %s)", self.name, self.version,
                "one thread" if self.batcher.model.session is self.batcher.model.batch_session else "all cores",
                {k: round(v, 2) for k, v in self.session_ms.items()},
            )  # fmt: skip


class ModelUnavailable(ServiceUnavailable):
    code = "model_unavailable"


class ModelLoading(ServiceUnavailable):
    code = "model_loading"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"


@dataclass
class Failure:
    """A version's last failed load, remembered so that requests meanwhile fail fast with its cause."""

    error: ApplicationError
    attempts: int
    retry_at: float  # time.monotonic()

    def refusal(self, name: str, version: int) -> ApplicationError:
        wait = max(0.0, self.retry_at - time.monotonic())
        if self.error.http_status < 500:  # a version the registry does not have stays a 404, not a 503
            return type(self.error)(self.error.message, code=self.error.code)
        return ModelUnavailable(
            f"{name} v{version} could not be loaded: {self.error.message} "
            f"(attempt {self.attempts}; the next one in {wait:.0f} s)",
            extra={"retry_after": max(1, round(wait))},
        )


@functools.cache
def probe_image() -> bytes:
    """The image warm-up and readiness run through a version: any valid image will do (made once)."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


class ModelCache:
    """Loading is single-flight and never holds a request hostage to a slow dependency:

    - one load per version in flight, on the cache's own loader threads, however many requests ask;
      a request waits for it at most SERVING_LOAD_WAIT_SECONDS, and at most SERVING_LOAD_WAITERS requests
      wait at once (the others are told 503 `model_loading` at once), so request threads stay free;
    - a failed load is remembered with exponential back-off (SERVING_LOAD_RETRY_SECONDS doubling up to
      SERVING_LOAD_RETRY_MAX_SECONDS): requests meanwhile fail in microseconds with a 503 that names the
      cause, and a version still live (pinned by a route) is tried again in the background when the
      back-off ends, so it is loaded before a request needs it once the dependency is back;
    - versions already loaded keep answering whatever happens to the registry."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._served: OrderedDict[tuple[str, int], Served] = OrderedDict()
        self._lock = threading.Lock()
        self._route_refresh = threading.Lock()
        self._loading: dict[tuple[str, int], Future[Served]] = {}
        self._failures: dict[tuple[str, int], Failure] = {}
        self._waiters = threading.BoundedSemaphore(settings.SERVING_LOAD_WAITERS)
        self._loader = ThreadPoolExecutor(
            max_workers=settings.SERVING_LOAD_THREADS, thread_name_prefix="model-load"
        )
        self._closed = False

    # --- routing ---------------------------------------------------------------------------
    def route(self, name: str) -> Route:
        """The model's routing, read again once SERVING_ROUTE_TTL_SECONDS old by one request thread at a
        time: the others keep the snapshot they have for the few milliseconds that takes, instead of every
        busy thread reading the same rows at once (under load that was 1.8 % of a 12 MP request's time)."""
        cached = self._routes.get(name)
        if cached is None:
            return self._route_read(name, None)
        if self._fresh(cached) or not self._route_refresh.acquire(blocking=False):
            return cached
        try:
            cached = self._routes[name]  # another thread may have read it since
            return cached if self._fresh(cached) else self._route_read(name, cached)
        finally:
            self._route_refresh.release()

    @staticmethod
    def _fresh(route: Route) -> bool:
        return time.monotonic() - route.fetched < settings.SERVING_ROUTE_TTL_SECONDS

    def _route_read(self, name: str, cached: Route | None) -> Route:
        now = time.monotonic()
        try:
            model = selectors.model_state_get(name=name)
            rollback_to = selectors.rollback_target(model=model)
        except DatabaseError as exc:
            return self._route_kept(name, cached, exc)
        fresh = Route(
            name=name,
            production=model.production_version,
            canary=model.canary_version,
            weight=model.canary_weight,
            rollback_to=rollback_to,
            fetched=now,
        )
        if cached is not None and cached.stale_since is not None:
            log.warning(
                "routing of %s read again after %.1f s without the database", name, now - cached.stale_since
            )
        self._routes[name] = fresh
        if cached is None or cached.pinned != fresh.pinned:
            for version in fresh.pinned:  # production, canary and the rollback target: a flip is instant
                self.load_start(name, version)
        return fresh

    def _route_kept(self, name: str, cached: Route | None, exc: DatabaseError) -> Route:
        """The database cannot be read (down, restarting, unreachable): a model this process has routed
        before keeps its last routes, read again one SERVING_ROUTE_TTL_SECONDS later, so a database outage
        does not stop predictions (routes only change through the database). A model never routed here
        cannot be answered: a 503 that names the cause without the database's address."""
        if cached is None:  # counted with the request's error (cvcp_errors_total)
            log.warning("routing of %s cannot be read: %s", name, exc)
            raise DatabaseUnavailable(
                f"the routing of {name} cannot be read: the control plane's database is unreachable",
                extra={"retry_after": 1},
            ) from exc
        metrics.route_read_failures.labels(model=name).inc()
        if cached.stale_since is None:
            log.warning("routing of %s cannot be read again, serving the last routes read: %s", name, exc)
        kept = dataclasses.replace(
            cached, fetched=time.monotonic(), stale_since=cached.stale_since or cached.fetched
        )
        self._routes[name] = kept
        return kept

    def model_label(self, name: str, error: ApplicationError | None = None) -> str:
        """The model's label in metrics: its name if it exists (this process can route it), found out
        unless the error at hand says the database cannot tell."""
        if isinstance(error, DatabaseUnavailable):
            return metrics.UNKNOWN_MODEL
        if name not in self._routes:
            try:
                self.route(name)
            except ApplicationError:
                return metrics.UNKNOWN_MODEL
        return name

    def routes_known(self) -> list[Route]:
        """The routes this process holds (for readiness while the database cannot be read)."""
        return list(self._routes.values())

    def _pinned(self, key: tuple[str, int]) -> bool:
        route = self._routes.get(key[0])
        return route is not None and key[1] in route.pinned

    # --- loaded versions -------------------------------------------------------------------
    def load_start(self, name: str, version: int) -> Future[Served] | None:
        """The version's load in flight, started now unless it is loaded (None) or failed within its
        back-off (raises the remembered refusal)."""
        key = (name, version)
        with self._lock:
            if key in self._served:
                return None
            future = self._loading.get(key)
            if future is not None:
                return future
            failure = self._failures.get(key)
            if failure is not None and time.monotonic() < failure.retry_at:
                raise failure.refusal(name, version)
            if self._closed:
                raise ModelUnavailable(f"{name} v{version}: this process is shutting down")
            future = self._loader.submit(self._load, key)
            self._loading[key] = future
            return future

    def served(self, name: str, version: int, *, wait: float | None = None) -> Served:
        """The loaded version; waits for its load at most `wait` seconds (SERVING_LOAD_WAIT_SECONDS)."""
        key = (name, version)
        found = self._served.get(key)
        if found is not None:
            with contextlib.suppress(KeyError):  # evicted meanwhile: this request still uses it
                self._served.move_to_end(key)  # least recently used is evicted first
            return found
        future = self.load_start(name, version)
        if future is None:
            return self._served.get((name, version)) or self.served(name, version, wait=wait)
        if not self._waiters.acquire(blocking=False):
            raise ModelLoading(
                f"{name} v{version} is being loaded; try again in a moment", extra={"retry_after": 1}
            )
        try:
            return future.result(timeout=settings.SERVING_LOAD_WAIT_SECONDS if wait is None else wait)
        except FutureTimeout:
            raise ModelLoading(
                f"{name} v{version} is still being loaded; try again in a moment", extra={"retry_after": 1}
            ) from None
        except ApplicationError as exc:
            failure = self._failures.get((name, version))
            raise (failure.refusal(name, version) if failure else exc) from None
        finally:
            self._waiters.release()

    def _load(self, key: tuple[str, int]) -> Served:
        from django.db import connection

        name, version = key
        started = time.perf_counter()
        try:
            served = self._build(name, version)
        except Exception as exc:
            error = (
                exc if isinstance(exc, ApplicationError) else ModelUnavailable(f"{type(exc).__name__}: {exc}")
            )
            with self._lock:
                attempts = self._failures[key].attempts + 1 if key in self._failures else 1
                backoff = min(
                    settings.SERVING_LOAD_RETRY_SECONDS * 2 ** (attempts - 1),
                    settings.SERVING_LOAD_RETRY_MAX_SECONDS,
                )
                self._failures[key] = Failure(
                    error=error, attempts=attempts, retry_at=time.monotonic() + backoff
                )
                self._loading.pop(key, None)
            metrics.model_load_failures.labels(model=name, version=str(version)).inc()
            log.warning(
                "loading %s v%s failed (attempt %s, next in %.0f s): %s",
                name,
                version,
                attempts,
                backoff,
                error,
            )
            if self._pinned(key):
                retry = threading.Timer(backoff, self._retry, args=(key,))
                retry.daemon = True
                retry.start()
            raise error from exc
        finally:
            connection.close()
        metrics.model_load_seconds.labels(model=name).observe(time.perf_counter() - started)
        metrics.model_loaded.labels(model=name, version=str(version)).set(1)
        with self._lock:
            self._served[key] = served
            self._failures.pop(key, None)
            self._loading.pop(key, None)
            self._evict()
            metrics.models_loaded.set(len(self._served))
        return served

    def _retry(self, key: tuple[str, int]) -> None:
        """A live version whose load failed, tried again when its back-off ends (so it is loaded before a
        request needs it once the dependency is back)."""
        if self._closed or not self._pinned(key):
            return
        with contextlib.suppress(ApplicationError):
            self.load_start(*key)

    def _build(self, name: str, version: int) -> Served:
        model_bytes = selectors.version_file(name=name, version=version)
        metadata = selectors.version_metadata(name=name, version=version)
        loaded = LoadedModel(
            model_bytes,
            threads=settings.SERVING_INTRA_OP_THREADS,
            batch_threads=settings.SERVING_BATCH_INTRA_OP_THREADS or None,
            named_outputs=task_for(metadata).named_outputs,
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
        try:  # the first inference pays onnxruntime's allocations here, not in a request
            served.warm_up(prepare(probe_image(), metadata, max_pixels=settings.SERVING_MAX_PIXELS).tensor)
        except Exception:
            served.batcher.stop()
            raise
        return served

    def _evict(self) -> None:
        """Beyond SERVING_MAX_LOADED, the least recently used versions that are not live are unloaded
        (a request that holds one finishes with it: the batcher stops after its queue)."""
        pinned = {(r.name, v) for r in self._routes.values() for v in r.pinned}
        extra = [key for key in self._served if key not in pinned]  # least recently used first
        while len(self._served) > settings.SERVING_MAX_LOADED and extra:
            key = extra.pop(0)
            served = self._served.pop(key)
            served.batcher.stop()
            metrics.model_loaded.labels(model=key[0], version=str(key[1])).set(0)
            metrics.model_evictions.labels(model=key[0]).inc()

    def loaded(self) -> list[tuple[str, int]]:
        return list(self._served)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            served, self._served = list(self._served.values()), OrderedDict()
        for one in served:
            one.batcher.stop()
        self._loader.shutdown(wait=False, cancel_futures=True)


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
            _cache.close()
        _cache = None
