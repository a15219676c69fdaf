"""The inference seam: a chosen version's answer, as predict gives it, recorded under its traffic source,
with no envelope and no prediction id; and the signal catalogue built from the version's task."""

import pytest
from django.test import Client

from modelspec.tasks import TASKS
from serving import inference
from serving import signal_catalogue as signals
from serving.preprocessing import ImageRejected
from tests.factories import png
from tests.helpers import metric

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_seam_answers_as_predict_does_without_an_envelope(model_with_versions):
    replay = dict(model="cats", version="2", stage="pinned", source="replay")  # registered only
    before = metric("cvcp_requests_total", **replay, outcome="ok")
    found = inference.answer(model_name="cats", version=2, data=png(5), source="replay")
    asked = Client().post("/v1/models/cats/predict?version=2", data=png(5), content_type="image/png").json()
    assert found.answer == {k: asked[k] for k in ("label", "confidence", "top_k")}
    assert set(found.answer) == {"label", "confidence", "top_k"}  # no prediction id: nobody receives it
    assert (found.cached, found.served.version, found.served.task.name) == (False, 2, "classification")
    assert found.stats is not None and (found.stats.width, found.stats.height) == (48, 32)
    assert metric("cvcp_requests_total", **replay, outcome="ok") == before + 1
    assert metric("cvcp_prediction_confidence_count", **replay) >= 1


def test_the_seam_uses_the_cache_only_when_asked(model_with_versions):
    first = inference.answer(model_name="cats", version=1, data=png(6), source="replay", use_cache=True)
    again = inference.answer(model_name="cats", version=1, data=png(6), source="replay", use_cache=True)
    fresh = inference.answer(model_name="cats", version=1, data=png(6), source="replay")
    assert (first.cached, again.cached, fresh.cached) == (False, True, False)
    assert first.answer == again.answer == fresh.answer
    assert again.stats == first.stats  # the cache keeps the input's statistics for the signals


def test_a_bad_image_is_refused_and_counted_under_its_source(model_with_versions):
    refused = dict(model="cats", version="1", stage="production", source="replay", outcome="refused")
    before = metric("cvcp_requests_total", **refused)
    with pytest.raises(ImageRejected):
        inference.answer(model_name="cats", version=1, data=b"not an image", source="replay")
    assert metric("cvcp_requests_total", **refused) == before + 1


def test_the_catalogue_is_the_common_signals_and_the_task_s_answer_signals():
    for task in TASKS.values():
        catalogue = signals.catalogue(task)
        assert set(catalogue) == {s.name for s in (*task.signals, *signals.IMAGE_SIGNALS)} | {
            signals.LATENCY.name,
            signals.SHAPES.name,
            signals.OUTCOMES.name,
        }
        assert catalogue.items() <= signals.SIGNALS.items()
    assert list(signals.catalogue(TASKS["classification"])) == [
        "confidence", "brightness", "contrast", "sharpness", "aspect_ratio", "latency", "shapes", "classes",
        "outcomes",
    ]  # fmt: skip


def test_an_unrecorded_answer_is_the_same_answer_and_counts_nowhere(model_with_versions):
    from serving.model_cache import model_cache

    served = model_cache().served("cats", 1)
    ok = dict(model="cats", version="1", stage="production", source="live", outcome="ok")
    before = metric("cvcp_requests_total", **ok)
    quiet = inference.answer_unrecorded(served, png(8))
    asked = Client().post("/v1/models/cats/predict", data=png(8), content_type="image/png").json()
    assert quiet.answer == {k: asked[k] for k in ("label", "confidence", "top_k")}
    assert metric("cvcp_requests_total", **ok) == before + 1  # the request, not the unrecorded answer
    assert served.task.signal_values(quiet.answer, served.metadata)[0] == asked["confidence"]
