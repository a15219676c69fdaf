"""Baselines from the reference images bin exactly as serving does; a production window can be adopted."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.exceptions import BadRequest, Forbidden
from monitoring import baselines, collection, selectors
from monitoring.models import Baseline, CollectionRun, MetricWindow
from serving import preprocessing
from serving.reference_photos import reference_set

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


def test_baselines_of_older_image_statistics_are_rebuilt_not_compared(model_with_versions, users):
    """When the statistics are measured another way (STATS_VERSION), the old baselines leave force, a new
    reference baseline is built, and windows of the old measurement are not summed with new ones."""
    made = baselines.baselines_ensure()
    Baseline.objects.filter(pk__in=[b.pk for b in made]).update(stats_version=1)
    old = Baseline.objects.get(model="cats", version=1)
    assert selectors.baseline_current(model_name="cats", version=1) is None
    rebuilt = baselines.baselines_ensure()
    assert [(b.model, b.version) for b in rebuilt] == [("cats", 1), ("cats", 2), ("cats", 3)]
    current = selectors.baseline_current(model_name="cats", version=1)
    assert current.stats_version == preprocessing.STATS_VERSION and current.pk != old.pk
    assert "rebuilt" in current.reason and f"v{preprocessing.STATS_VERSION}" in current.reason
    assert current.signals["brightness"]["total"] == old.signals["brightness"]["total"]
    assert Baseline.objects.filter(model="cats", version=1).count() == 2  # the old one stays in history
    assert baselines.baselines_ensure() == []

    run = CollectionRun.objects.create(ok=True)
    now = timezone.now()
    for stats_version, count in ((1, 7.0), (preprocessing.STATS_VERSION, 5.0)):
        MetricWindow.objects.create(
            model="cats", version=1, stage="production", signal="brightness", start=now - timedelta(minutes=5),
            end=now, bins={"0.5": count}, total=count, value_sum=count / 2, run=run, stats_version=stats_version,
        )  # fmt: skip
    summed = selectors.windows_sum(
        model="cats", version=1, stage="production", start=now - timedelta(hours=1), end=now
    )
    assert summed["brightness"]["total"] == 5.0
