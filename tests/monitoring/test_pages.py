"""Monitoring pages never 500: a dead metrics source shows as a gap, an empty window as 'no metrics'."""

import pytest

from monitoring import collection
from tests.helpers import free_port

pytestmark = pytest.mark.django_db


def test_collection_gap_is_shown_on_the_page(client, users, model_with_versions, settings):
    settings.SERVING_METRICS_URLS = [f"http://127.0.0.1:{free_port()}/metrics"]
    collection.collect()
    collection.collect()
    client.force_login(users["viewer"])
    page = client.get("/models/cats/monitoring")
    assert page.status_code == 200
    assert b"Metrics unavailable since" in page.content and b"could not scrape" in page.content
    assert b"No metrics collected in this window yet" in page.content


def test_unknown_model_is_404(client, users):
    client.force_login(users["viewer"])
    assert client.get("/models/nope/monitoring").status_code == 404
