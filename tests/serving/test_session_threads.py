"""onnxruntime sessions as the server makes them: their pool threads may run on any core.

Left at its default thread count, onnxruntime pins each pool thread to one core, the same cores in every
session of every worker process; a request thread the scheduler put on such a core then shared it with
the pinned thread it was waiting on (bench/README.md, "The pinned threads")."""

import os
import threading

import numpy as np
import pytest

from modelspec import onnx_runtime
from modelspec.examples import tiny_classifier_onnx


def _threads() -> set[int]:
    return {int(tid) for tid in os.listdir("/proc/self/task")}


@pytest.mark.skipif(onnx_runtime.all_cores() < 2, reason="one core: onnxruntime starts no pool thread")
def test_an_all_cores_session_does_not_pin_its_threads():
    before = _threads()
    model = onnx_runtime.LoadedModel(tiny_classifier_onnx(size=32))
    model.run(np.zeros((1, 3, 32, 32), np.float32))
    pool = _threads() - before - {threading.get_native_id()}
    assert len(pool) >= onnx_runtime.all_cores() - 1  # the session's own threads, started now
    allowed = os.sched_getaffinity(0)
    assert {tid: os.sched_getaffinity(tid) for tid in pool} == dict.fromkeys(pool, allowed)


def test_all_cores_counts_the_cores_this_process_may_use():
    assert 1 <= onnx_runtime.all_cores() <= len(os.sched_getaffinity(0))


@pytest.mark.skipif(onnx_runtime.all_cores() < 2, reason="one core: there is one session only")
def test_lone_requests_go_to_the_session_measured_faster():
    """A loaded version times its all-cores session against its one-thread one and answers lone requests on
    the one measured clearly faster (a small model loses more to spreading over cores than it gains)."""
    tensor = np.zeros((1, 3, 32, 32), np.float32)
    model = onnx_runtime.LoadedModel(tiny_classifier_onnx(size=32), threads=0, batch_threads=1)
    all_cores = model.session
    measured = model.lone_session_choose(tensor)
    assert set(measured) == {"all_cores", "one_thread"} and all(v > 0 for v in measured.values())
    chosen = model.batch_session if measured["one_thread"] < 0.9 * measured["all_cores"] else all_cores
    assert model.session is chosen
    expected = onnx_runtime.LoadedModel(tiny_classifier_onnx(size=32)).run(tensor)
    np.testing.assert_allclose(model.run(tensor), expected, rtol=1e-5)  # either way, the same answer
    single = onnx_runtime.LoadedModel(tiny_classifier_onnx(size=32), threads=1, batch_threads=1)
    assert single.lone_session_choose(tensor) == {}  # one session: nothing to choose
