"""The micro-batcher on a real onnxruntime session: lone requests run inline, concurrent ones are batched,
several batching threads keep every answer with its own request."""

import threading

import numpy as np
import pytest

from serving.batching import Batcher
from serving.model_cache import model_cache
from serving.preprocessing import prepare
from tests.factories import png

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cats(model_with_versions):
    served = model_cache().served("cats", 1)
    tensors = [prepare(png(seed), served.metadata, max_pixels=10**6).tensor for seed in range(24)]
    expected = [served.batcher.model.run(t)[0] for t in tensors]
    return served.batcher.model, tensors, expected


def test_a_lone_request_runs_inline_and_one_among_others_is_queued(cats):
    model, tensors, expected = cats
    batcher = Batcher(model, name="cats", version=1, max_batch=2, max_wait=0)
    try:
        with batcher.admitted():
            scores, timing = batcher.submit(tensors[0])
        assert timing.queue == 0.0  # ran on the request's own thread
        np.testing.assert_allclose(scores, expected[0], rtol=1e-5)
        with batcher.admitted(), batcher.admitted():  # another request is being decoded meanwhile
            scores, timing = batcher.submit(tensors[1])
        assert timing.queue > 0.0  # handed to a batching thread
        np.testing.assert_allclose(scores, expected[1], rtol=1e-5)
    finally:
        batcher.stop()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_concurrent_requests_get_their_own_answers_with_several_batching_threads(cats, workers):
    model, tensors, expected = cats
    batcher = Batcher(model, name="cats", version=1, max_batch=2, max_wait=0, workers=workers)
    answers: dict[int, np.ndarray] = {}
    start = threading.Barrier(8)

    def client(offset):
        start.wait()
        for i in range(offset, len(tensors), 8):
            with batcher.admitted():
                answers[i] = batcher.submit(tensors[i], timeout=20)[0]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        batcher.stop()
    assert sorted(answers) == list(range(len(tensors)))
    for i, scores in answers.items():
        np.testing.assert_allclose(scores, expected[i], rtol=1e-5, atol=1e-6)


def test_a_failing_batch_reaches_every_waiting_request_and_the_batcher_goes_on(cats):
    model, tensors, expected = cats
    batcher = Batcher(model, name="cats", version=1, max_batch=2, max_wait=0.05, workers=2)
    try:
        wrong = np.zeros((1, 3, 7, 7), np.float32)  # not the model's input size
        with pytest.raises(Exception, match="(?i)dimension|shape|invalid"):
            batcher.submit(wrong, timeout=20)
        scores, _ = batcher.submit(tensors[2], timeout=20)
        np.testing.assert_allclose(scores, expected[2], rtol=1e-5)
    finally:
        batcher.stop()


def test_stopped_batching_threads_exit(cats):
    model, _, _ = cats
    batcher = Batcher(model, name="cats", version=1, max_batch=2, max_wait=0, workers=3)
    batcher.stop()
    for thread in batcher._threads:
        thread.join(5)
    assert not any(thread.is_alive() for thread in batcher._threads)


def test_a_stopped_batcher_still_answers_what_was_queued_and_what_comes_after(cats):
    """An evicted version's batcher is stopped while requests may still hold it: none of them hangs."""
    model, tensors, expected = cats
    batcher = Batcher(model, name="cats", version=1, max_batch=2, max_wait=0.5)  # queued requests wait
    answers: dict[int, np.ndarray] = {}

    def client(i):
        with batcher.admitted():
            answers[i] = batcher.submit(tensors[i], timeout=10)[0]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    batcher.stop()
    for t in threads:
        t.join(20)
    after, _ = batcher.submit(tensors[3], timeout=10)
    assert sorted(answers) == [0, 1, 2]
    for i, scores in answers.items():
        np.testing.assert_allclose(scores, expected[i], rtol=1e-5)
    np.testing.assert_allclose(after, expected[3], rtol=1e-5)
