"""Baselines from the reference images bin exactly as serving does; a production window can be adopted."""

import pytest
from django.test import Client
from django.utils import timezone

from core.exceptions import BadRequest, Forbidden
from monitoring import baselines, collection, selectors
from monitoring.models import Baseline, MetricWindow
from serving.samples import reference_set

pytestmark = pytest.mark.django_db(transaction=True)


def test_reference_baseline_equals_what_serving_reports_for_the_same_images(
    live_server, model_with_versions, settings
):
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    baseline = baselines.baseline_from_reference(model_name="cats", version=1)
    images = reference_set()
    assert baseline.samples == len(images) >= 50
    assert sum(baseline.signals["confidence"]["bins"].values()) == len(images)
    client = Client()
    client.post("/v1/models/cats/predict", data=images[0].data + b"warm", content_type="image/jpeg")
    collection.collect()  # the starting point
    for sample in images:
        response = client.post(
            "/v1/models/cats/predict?stage=production", data=sample.data, content_type="image/jpeg"
        )
        assert response.status_code == 200
    collection.collect()
    for signal in ("confidence", "brightness", "contrast", "sharpness", "aspect_ratio", "shapes", "classes"):
        window = MetricWindow.objects.get(model="cats", version=1, stage="production", signal=signal)
        served = {k: v for k, v in window.bins.items() if v}
        assert served == baseline.signals[signal]["bins"], signal
    window = MetricWindow.objects.get(model="cats", version=1, signal="confidence")
    assert window.value_sum == pytest.approx(baseline.signals["confidence"]["sum"], rel=1e-6)


def test_ensure_builds_once_per_registered_version(model_with_versions):
    made = baselines.baselines_ensure()
    assert [(b.model, b.version, b.source) for b in made] == [("cats", v, "reference") for v in (1, 2, 3)]
    assert baselines.baselines_ensure() == []


def test_adopt_a_production_window_as_baseline(live_server, model_with_versions, users, settings):
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    client = Client()
    client.post("/v1/models/cats/predict", data=reference_set()[0].data, content_type="image/jpeg")
    start = timezone.now()
    collection.collect()
    for sample in reference_set()[:20]:
        client.post("/v1/models/cats/predict", data=sample.data + b"x", content_type="image/jpeg")
    collection.collect()
    end = timezone.now()
    with pytest.raises(Forbidden):
        baselines.baseline_adopt_window(
            model_name="cats", version=1, start=start, end=end, actor=users["viewer"]
        )
    with pytest.raises(BadRequest):
        baselines.baseline_adopt_window(
            model_name="cats", version=1, start=end, end=timezone.now(), actor=users["operator"]
        )
    adopted = baselines.baseline_adopt_window(
        model_name="cats", version=1, start=start, end=end, actor=users["operator"], reason="new camera"
    )
    assert (adopted.source, adopted.samples, adopted.created_by) == ("window", 20, users["operator"])
    assert selectors.baseline_current(model_name="cats", version=1) == adopted
    assert Baseline.objects.count() == 1
