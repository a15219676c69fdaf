"""With REDIS_URL set, prediction answers live in a real Redis, where every replica finds them."""

import pytest
import redis

from tests.serving.conftest import png

pytestmark = pytest.mark.django_db(transaction=True)


def test_prediction_cache_in_redis_is_shared(client, model_with_versions, redis_url, settings):
    settings.CACHES = {
        **settings.CACHES,
        "predictions": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": "cvcp",
        },
    }
    first = client.post("/v1/models/cats/predict", data=png(7), content_type="image/png").json()
    keys = redis.Redis.from_url(redis_url).keys("cvcp:*pred:cats:1:*")
    assert first["cached"] is False and len(keys) == 1
    # Another replica: a fresh process-level cache connection, same Redis.
    from django.core.cache import caches

    caches["predictions"].close()
    second = client.post("/v1/models/cats/predict", data=png(7), content_type="image/png").json()
    assert second["cached"] is True and second["top_k"] == first["top_k"]
