"""The accuracy table's counts agree with the chart's: answers from the prediction cache are predictions
too (they carry ids and get labels), and labels of predictions the collected counts do not hold yet are
named, not silently set against fewer predictions."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from monitoring import collection, ground_truth
from tests.factories import png

pytestmark = pytest.mark.django_db(transaction=True)


def label_all(seeds, users) -> list[dict]:
    client = Client()
    answers = [
        client.post("/v1/models/cats/predict", data=png(seed), content_type="image/png").json()
        for seed in seeds
    ]
    items = [{"prediction_id": a["prediction_id"], "label": a["label"]} for a in answers]
    assert {r["status"] for r in ground_truth.feedback_bulk(items=items, actor=users["engineer"])} == {
        "recorded"
    }
    return answers


def test_labels_of_cached_answers_count_against_as_many_predictions(
    live_server, model_with_versions, users, settings
):
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    label_all([999], users)
    collection.collect()  # the starting point: what came before is not counted, nor its label shown
    answers = label_all([*range(10), *[3] * 10], users)
    assert sum(a["cached"] for a in answers) == 10
    collection.collect()
    now = timezone.now()
    [v1] = ground_truth.performance(model="cats", since=now - timedelta(hours=1), until=now)
    assert (v1.labelled, v1.predictions) == (21, 20)  # the one before the first collection …
    assert v1.uncollected == 1  # … is named
    label_all(range(100, 105), users)  # labelled at once, counted at the next collection
    now = timezone.now()
    [v1] = ground_truth.performance(model="cats", since=now - timedelta(hours=1), until=now)
    assert (v1.labelled, v1.predictions, v1.uncollected) == (26, 20, 6)
    assert v1.labelled - v1.uncollected <= v1.predictions
    client = Client()
    client.force_login(users["viewer"])
    section = client.get("/models/cats/monitoring").content.decode().split('data-testid="accuracy"')[1]
    assert '<tr data-version="1"><td>v1</td><td>20</td>' in section
    assert "(6 labels of predictions not in the collected counts: made before the first" in section
    collection.collect()
    now = timezone.now()
    [v1] = ground_truth.performance(model="cats", since=now - timedelta(hours=1), until=now)
    assert (v1.labelled, v1.predictions, v1.uncollected) == (26, 25, 1)
