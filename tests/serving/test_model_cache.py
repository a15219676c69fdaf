"""The per-process model cache. Loaded versions are bounded: beyond SERVING_MAX_LOADED the least recently
used version that is not live is unloaded, counted in /metrics; production is never evicted. An expired
route is read again by one thread while the others answer from their snapshot; while the database cannot be
read, the last routes keep serving."""

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.models import Model
from prometheus_client import REGISTRY

from registry import selectors
from registry.exceptions import ModelNotFound
from registry.models import ModelState
from serving.model_cache import model_cache, model_cache_reset
from serving.models import SamplePolicy
from serving.offpath import Recent
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


class HeldReads:
    """The registry read behind a route, with reads of one model held until `release`; every read counted."""

    def __init__(self, monkeypatch, name: str):
        self.reads: list[str] = []
        self.reading, self.released = threading.Event(), threading.Event()
        real = selectors.model_state_get

        def read(**kwargs):
            self.reads.append(kwargs["name"])
            if kwargs["name"] == name:
                self.reading.set()
                self.released.wait(10)
            return real(**kwargs)

        monkeypatch.setattr(selectors, "model_state_get", read)

    def route_meanwhile(self, cache, name: str) -> threading.Thread:
        """`cache.route(name)` on another thread, returned once its read is held."""
        thread = threading.Thread(target=cache.route, args=(name,))
        thread.start()
        assert self.reading.wait(10)
        return thread

    def release(self, thread: threading.Thread) -> None:
        self.released.set()
        thread.join(10)


def test_an_expired_route_is_read_again_by_one_thread_while_the_others_keep_their_snapshot(
    model_with_versions, settings, monkeypatch
):
    settings.SERVING_ROUTE_TTL_SECONDS = 0.05
    cache = model_cache()
    first = cache.route("cats")
    time.sleep(0.1)  # expired
    held = HeldReads(monkeypatch, "cats")
    refresher = held.route_meanwhile(cache, "cats")
    others = [cache.route("cats") for _ in range(20)]  # while the refresh is in flight
    held.release(refresher)
    assert held.reads == ["cats"]
    assert all(route is first for route in others)  # answered at once from the snapshot
    settings.SERVING_ROUTE_TTL_SECONDS = 60  # the read just made stays fresh however slow this machine is
    fresh = cache.route("cats")
    assert fresh is not first and fresh.production == first.production
    assert held.reads == ["cats"]  # fresh again: no further read
    for version in fresh.pinned:  # the loads the first read started end within this test
        cache.served("cats", version)


def test_a_model_without_a_snapshot_is_read_by_every_asking_thread_without_waiting_on_others(
    model_with_versions, monkeypatch
):
    cache = model_cache()
    held = HeldReads(monkeypatch, "cats")
    refresher = held.route_meanwhile(cache, "cats")
    with pytest.raises(ModelNotFound):
        cache.route("no-such-model")  # not held up by the first read of another model
    held.release(refresher)
    for version in cache.route("cats").pinned:  # loaded, within this test
        cache.served("cats", version)


@contextlib.contextmanager
def table_gone(model: type[Model]) -> Iterator[None]:
    """A real failure of every read of the model's table (it is renamed away), until the block ends."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_away"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{table}_away" RENAME TO "{table}"')


def route_read_failures(model: str) -> float:
    return REGISTRY.get_sample_value("cvcp_route_read_failures_total", {"model": model}) or 0.0


def test_while_the_database_cannot_be_read_the_last_routes_keep_serving(
    model_with_versions, settings, client
):
    settings.SERVING_ROUTE_TTL_SECONDS = 0.05
    assert client.post("/v1/models/cats/predict", data=png(1), content_type="image/png").status_code == 200
    before = route_read_failures("cats")
    with table_gone(ModelState):
        time.sleep(0.1)  # the route is due to be read again
        answer = client.post("/v1/models/cats/predict", data=png(2), content_type="image/png")
        assert answer.status_code == 200 and answer.json()["model_version"] == 1, answer.content
        assert route_read_failures("cats") == before + 1
        assert model_cache().route("cats").stale_since is not None
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["models"]["cats"]["routes_stale_s"] >= 0.05
        unknown = client.post("/v1/models/dogs/predict", data=png(3), content_type="image/png")
        assert unknown.status_code == 503 and unknown["Retry-After"] == "1"
        assert unknown.json()["error"]["code"] == "database_unavailable"
        model_cache_reset()  # a process started during the outage holds no routes: not ready, and says why
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "database_unavailable"
    time.sleep(0.1)
    route = model_cache().route("cats")
    assert route.stale_since is None and route.production == 1
    ready = client.get("/readyz")
    assert ready.status_code == 200 and "routes_stale_s" not in ready.json()["models"]["cats"]


def test_a_setting_read_on_the_request_path_keeps_its_last_value_while_the_database_cannot_be_read(db):
    SamplePolicy.objects.create(model="cats", enabled=True)
    enabled = Recent("a policy", lambda m: SamplePolicy.objects.filter(model=m, enabled=True).exists(),
                     ttl=0, fallback=False)  # fmt: skip
    assert enabled.get("cats") is True
    with table_gone(SamplePolicy):
        assert enabled.get("cats") is True  # the last value read
        assert enabled.get("dogs") is False  # never read: the fallback (off)
    SamplePolicy.objects.filter(model="cats").update(enabled=False)
    assert enabled.get("cats") is False  # read again once the database answers
