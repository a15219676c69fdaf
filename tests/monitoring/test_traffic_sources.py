"""Every prediction carries its traffic source; monitoring reads live traffic only. The tester page's
uploads are labelled tester and never become "production n=9"."""

import pytest
from django.test import Client
from django.utils import timezone

from monitoring import collection
from monitoring.models import MetricWindow
from monitoring.selectors import windows_sum
from tests.factories import png
from tests.helpers import assert_error, metric

pytestmark = pytest.mark.django_db(transaction=True)


def confidence_total(**filters) -> float:
    return sum(w.total for w in MetricWindow.objects.filter(model="cats", signal="confidence", **filters))


def test_tester_predictions_are_labelled_and_left_out_of_monitoring(
    live_server, model_with_versions, users, settings
):
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    public, person = Client(), Client()
    person.force_login(users["viewer"])
    public.post("/v1/models/cats/predict", data=png(500), content_type="image/png")
    collection.collect()  # the starting point
    started = timezone.now()
    tester_before = metric(
        "cvcp_requests_total", model="cats", version="1", stage="production", source="tester", outcome="ok"
    )

    for seed in range(3):
        answer = public.post("/v1/models/cats/predict", data=png(600 + seed), content_type="image/png")
        assert answer.json()["source"] == "live"
    for seed in range(4):
        answer = person.post(
            "/models/cats/try/predict?stage=production", data=png(700 + seed), content_type="image/png"
        )
        assert answer.status_code == 200
        assert (answer.json()["source"], answer.json()["model_version"]) == ("tester", 1)
    assert (
        metric(
            "cvcp_requests_total",
            model="cats",
            version="1",
            stage="production",
            source="tester",
            outcome="ok",
        )
        == tester_before + 4
    )
    collection.collect()

    assert confidence_total(source="tester") == 4
    assert confidence_total(source="live") == 3
    live = windows_sum(model="cats", version=1, stage="production", start=started, end=timezone.now())
    assert live["confidence"]["total"] == 3  # what baselines, canary analysis and alerts read


def test_the_tester_endpoint_needs_a_login_and_answers_json(model_with_versions):
    refused = Client().post("/models/cats/try/predict", data=png(1), content_type="image/png")
    assert_error(refused, 401, "not_authenticated")
