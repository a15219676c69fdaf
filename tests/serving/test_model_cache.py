"""Loaded versions per process are bounded: beyond SERVING_MAX_LOADED the least recently used version
that is not live is unloaded, counted in /metrics; production is never evicted."""

import pytest
from prometheus_client import REGISTRY

from serving.model_cache import model_cache
from tests.factories import png, register

pytestmark = pytest.mark.django_db(transaction=True)


def evictions(model: str) -> float:
    return REGISTRY.get_sample_value("cvcp_model_evictions_total", {"model": model}) or 0.0


def test_least_recently_used_versions_are_evicted_and_counted(model_with_versions, users, settings, client):
    settings.SERVING_MAX_LOADED = 3
    register("cats", users["engineer"], seed=4)
    cache = model_cache()
    cache.route("cats")  # production (v1) is pinned
    cache.served("cats", 1)
    cache.served("cats", 2)
    cache.served("cats", 3)
    cache.served("cats", 2)  # v2 used again: v3 is now the least recently used
    before = evictions("cats")
    cache.served("cats", 4)
    assert sorted(cache.loaded()) == [("cats", 1), ("cats", 2), ("cats", 4)]
    assert evictions("cats") == before + 1
    for version in (3, 2):  # each load pushes out the least recently used one that is not live
        cache.served("cats", version)
    assert ("cats", 1) in cache.loaded()  # production stays, however long unused
    assert len(cache.loaded()) == 3
    assert evictions("cats") == before + 3
    text = client.get("/metrics").content.decode()
    assert 'cvcp_model_evictions_total{model="cats"}' in text
    assert "cvcp_models_loaded 3.0" in text
    answer = client.post("/v1/models/cats/predict?version=4", data=png(1), content_type="image/png")
    assert answer.status_code == 200  # an evicted version is loaded again when asked for
    assert answer.json()["model_version"] == 4
    assert ("cats", 4) in cache.loaded()
