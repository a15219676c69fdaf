"""The lock-out's count is exact under concurrency, in both places it can live: the database cache of
the embedded defaults (core.cache: the row locked while it is incremented) and Redis (INCR)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import caches
from django.db import connection

from core.auth import LOCKOUT_CACHE, token_failure_record, token_lock_left

THREADS, EACH = 8, 10


def hammer(client: str) -> None:
    def work(_: int) -> None:
        try:
            for _ in range(EACH):
                token_failure_record(client)
        finally:
            connection.close()  # each thread's own database connection

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))


@pytest.fixture
def lockout_in_redis(redis_url, settings):
    settings.CACHES = {
        **settings.CACHES,
        LOCKOUT_CACHE: {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url},
    }
    caches[LOCKOUT_CACHE].clear()
    yield
    caches[LOCKOUT_CACHE].close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["database", "redis"])
def test_concurrent_failures_are_all_counted_and_lock_exactly_once(backend, settings, request):
    if backend == "redis":
        request.getfixturevalue("lockout_in_redis")
    else:
        caches[LOCKOUT_CACHE].clear()
    settings.API_AUTH_FAILURE_LIMIT, settings.API_AUTH_LOCKOUT_SECONDS = 10_000, 60
    hammer("198.51.100.1")
    assert caches[LOCKOUT_CACHE].get("api-auth-failures:198.51.100.1") == THREADS * EACH
    assert token_lock_left("198.51.100.1") == 0
    settings.API_AUTH_FAILURE_LIMIT = THREADS * EACH // 2
    hammer("198.51.100.2")
    assert 0 < token_lock_left("198.51.100.2") <= 60  # locked by the limit-th failure, whichever thread
