"""Work that follows a prediction but must never slow it: a bounded queue and one daemon thread per
process. `offer` never blocks — when the queue is full the item is dropped and counted — so the
request path costs one put_nowait. Used by the sample store and by shadow traffic, which also count
through it, coalesced, the repeated inputs they skip (`tally`)."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import DatabaseError, close_old_connections

from . import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")


class Recent(Generic[T]):
    """A model's setting as this process last read it, read again once it is `ttl` seconds old: the
    request path asks it on every prediction without a database query each time. While the database
    cannot be read, the last value read stays (`fallback` if there is none: off), tried again each `ttl`,
    so an outage never fails a request that has its answer already."""

    def __init__(self, name: str, load: Callable[[str], T], *, ttl: float, fallback: T):
        self.name, self.load, self.ttl, self.fallback = name, load, ttl, fallback
        self._values: dict[str, tuple[T, float]] = {}

    def get(self, model: str) -> T:
        cached, now = self._values.get(model), time.monotonic()
        if cached is None or cached[1] < now:
            try:
                value = self.load(model)
            except DatabaseError as exc:
                value = self.fallback if cached is None else cached[0]
                log.warning("%s of %s cannot be read, using %r: %s", self.name, model, value, exc)
            cached = self._values[model] = (value, now + self.ttl)
        return cached[0]

    def forget(self, model: str) -> None:
        """After a change made in this process: read it again at once."""
        self._values.pop(model, None)


@dataclass(frozen=True)
class _Flush:
    key: str


_every: weakref.WeakSet[OffPath] = weakref.WeakSet()  # for drain_all


class OffPath:
    def __init__(
        self,
        name: str,
        handle: Callable[[Any], None],
        *,
        maxsize: int,
        nice: int = 19,
        on_tally: Callable[[str, int], None] | None = None,
    ):
        self.name, self.handle, self.nice, self.on_tally = name, handle, nice, on_tally
        _every.add(self)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self.dropped = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._tallies: dict[str, int] = {}
        self._flush_queued: set[str] = set()
        self._tally_lock = threading.Lock()

    def tally(self, key: str) -> None:
        """Count one occurrence for the worker to write (`on_tally(key, n)`). Coalesced: however many
        arrive before the worker gets to them, one marker per key waits in the queue, so a burst of cache
        hits costs a lock each and one put_nowait in all (a full queue: the count waits for the next)."""
        with self._tally_lock:
            self._tallies[key] = self._tallies.get(key, 0) + 1
            if key in self._flush_queued:
                return
            self._flush_queued.add(key)
        self._start()
        try:
            self.queue.put_nowait(_Flush(key))
        except queue.Full:
            with self._tally_lock:
                self._flush_queued.discard(key)

    def _flush(self, key: str) -> None:
        with self._tally_lock:
            count = self._tallies.pop(key, 0)
            self._flush_queued.discard(key)
        if count and self.on_tally is not None:
            self.on_tally(key, count)

    def offer(self, item: Any, *, model: str) -> bool:
        """Queue an item for the worker; False (and counted) when the queue is full."""
        self._start()
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            self.dropped += 1
            metrics.offpath_dropped.labels(queue=self.name, model=model).inc()
            return False

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far is handled (tests, a clean shutdown)."""
        done = threading.Event()

        def wait() -> None:
            self.queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        if not done.wait(timeout):
            raise TimeoutError(f"the {self.name} queue did not drain in {timeout} s")

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=f"offpath-{self.name}", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        # Linux schedules threads one by one: this thread (and the inference it runs in place) gets the
        # CPU only when request threads leave it some.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        while True:
            item = self.queue.get()
            try:
                close_old_connections()
                if isinstance(item, _Flush):
                    self._flush(item.key)
                else:
                    self.handle(item)
            except Exception:  # noqa: BLE001 - one bad item must not stop the worker; it is logged
                log.exception("%s: an item failed", self.name)
            finally:
                self.queue.task_done()


def drain_all(*, timeout: float) -> None:
    """Wait (bounded) until every off-path queue has handled what it holds: a worker process's exit
    (controlplane/serve.py) must not begin while a shadow's or the sample store's thread is inside an
    inference or a write."""
    deadline = time.monotonic() + timeout
    for worker in list(_every):
        with worker.queue.all_tasks_done:
            while worker.queue.unfinished_tasks and (left := deadline - time.monotonic()) > 0:
                worker.queue.all_tasks_done.wait(left)
