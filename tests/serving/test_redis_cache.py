"""With REDIS_URL set, prediction answers live in a real Redis, where every replica finds them."""

import pytest
import redis

from tests.factories import png

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_cache(redis_url, settings) -> str:
    """The prediction cache in the real Redis, as REDIS_URL configures it."""
    settings.CACHES = {
        **settings.CACHES,
        "predictions": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": "cvcp",
        },
    }
    return redis_url


def test_prediction_cache_in_redis_is_shared(client, model_with_versions, redis_cache):
    first = client.post("/v1/models/cats/predict", data=png(7), content_type="image/png").json()
    keys = redis.Redis.from_url(redis_cache).keys("cvcp:*pred:cats:1:*")
    assert first["cached"] is False and len(keys) == 1
    # Another replica: a fresh process-level cache connection, same Redis.
    from django.core.cache import caches

    caches["predictions"].close()
    second = client.post("/v1/models/cats/predict", data=png(7), content_type="image/png").json()
    assert second["cached"] is True and second["top_k"] == first["top_k"]


def test_predictions_are_answered_while_redis_is_down(client, model_with_versions, redis_cache):
    from prometheus_client import REGISTRY

    labels = {"model": "cats", "version": "1", "stage": "production", "source": "live", "result": "error"}
    before = REGISTRY.get_sample_value("cvcp_cache_lookups_total", labels) or 0.0
    assert client.post("/v1/models/cats/predict", data=png(8), content_type="image/png").status_code == 200
    try:
        redis.Redis.from_url(redis_cache).shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it goes
    for seed in (8, 9):  # a cached input and a new one: both answered, from the model
        answer = client.post("/v1/models/cats/predict", data=png(seed), content_type="image/png")
        assert answer.status_code == 200 and answer.json()["cached"] is False
    assert REGISTRY.get_sample_value("cvcp_cache_lookups_total", labels) == before + 2


def test_a_hung_redis_costs_one_timeout_then_nothing(client, model_with_versions, redis_server, settings):
    """Redis stopped (it accepts connections, answers nothing): the first request pays the socket timeout
    once, then the cache is left alone and requests are answered at the model's speed."""
    import time

    from tests.processes import hung

    url, server = redis_server
    settings.CACHES = {
        **settings.CACHES,
        "predictions": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "cvcp",
            "OPTIONS": {"socket_timeout": 0.25, "socket_connect_timeout": 0.25},
        },
    }
    assert client.post("/v1/models/cats/predict", data=png(1), content_type="image/png").status_code == 200
    with hung(server):
        took = []
        for seed in range(2, 12):
            started = time.perf_counter()
            answer = client.post("/v1/models/cats/predict", data=png(seed), content_type="image/png")
            took.append(time.perf_counter() - started)
            assert answer.status_code == 200 and answer.json()["cached"] is False
    assert took[0] < 1.5, f"the first request under a hung Redis took {took[0]:.2f} s"
    assert max(took[1:]) < 0.2, [round(t, 3) for t in took]
