"""Micro-batching of one loaded version's inferences."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelspec.onnx_runtime import LoadedModel

from . import metrics


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
    def admitted(self) -> Iterator[None]:
        """Count a request from its arrival, before decoding, until its inference is over."""
        with self._changed:
            self._arrived += 1
        try:
            yield
        finally:
            with self._changed:
                self._arrived -= 1

    def submit(self, tensor: np.ndarray, *, timeout: float = 30.0) -> tuple[Any, Timing]:
        """The model's raw output for one input (what its task decodes: LoadedModel.raw)."""
        future: Future = Future()
        with self._changed:
            # Greedy mode and a lone request (nothing running, queued or being decoded): run here on the
            # all-cores session and skip the hand-off. Under load every request goes to the batching
            # threads, so the all-cores session never competes with them (its idle threads spin).
            # With a batch wait configured, every request waits for company instead.
            # A stopped batcher (its version evicted while this request held it) runs it here too.
            lone = self.max_wait == 0 and self._arrived <= 1 and not self._busy and not self._pending
            inline = lone or self._stopped
            if inline:
                self._busy += 1
            else:
                self._pending.append((tensor, future, time.perf_counter()))
                self._changed.notify_all()
        if not inline:
            return future.result(timeout=timeout)
        try:
            started = time.perf_counter()
            scores = self.model.raw(tensor)
        finally:
            self._done()
        metrics.batch_size.labels(model=self.name, version=self.version).observe(1)
        return scores[0], Timing(queue=0.0, inference=time.perf_counter() - started)

    def run_here(self, tensor: np.ndarray) -> tuple[Any, Timing]:
        """Background work (a shadow's answer): run in the calling thread on the one-thread session, so
        the work takes that thread's CPU priority and none of the batching threads' time."""
        started = time.perf_counter()
        scores = self.model.raw(tensor, under_load=True)
        return scores[0], Timing(queue=0.0, inference=time.perf_counter() - started)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def _done(self) -> None:
        with self._changed:
            self._busy -= 1

    def _take(self, worker: int) -> list:
        """Wait for work (a helper worker for a full batch waiting), then take one batch ([] if another worker
        took it first). Once stopped, what is still queued is run: a request never waits on an evicted version."""
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
            batch = [self._pending.popleft() for _ in range(min(len(self._pending), self.max_batch))]
            if batch:
                self._busy += 1
            return batch

    def _work(self, worker: int) -> None:
        while True:
            batch = self._take(worker)
            if not batch:
                if self._stopped:
                    return
                continue  # another worker took what this one waited for
            started = time.perf_counter()
            try:
                scores = self.model.raw(np.concatenate([tensor for tensor, _, _ in batch]), under_load=True)
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
