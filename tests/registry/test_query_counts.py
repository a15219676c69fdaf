"""SQL queries per page are bounded: the models list, a model page, a version page and the history API
make as many queries with three times the models, versions and history as with a few (no N + 1)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import register, to_production

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = {
    "models list": "/",
    "model page": "/models/m0/",
    "version page": "/models/m0/versions/1/",
    "history API": "/api/v1/models/m0/history",
    "versions API": "/api/v1/models/m0/versions/",
    "models API": "/api/v1/models/",
}


def grow(users, models: range, versions: int) -> None:
    for m in models:
        for seed in range(versions):
            register(f"m{m}", users["engineer"], seed=seed + 1)
        to_production(f"m{m}", 1, users)


def queries(client) -> dict[str, int]:
    counted = {}
    for page, url in PAGES.items():
        client.get(url)  # the first view of a page may fill caches; the bound is on every later one
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (page, response.status_code)
        counted[page] = len(captured)
    return counted


def test_queries_per_page_do_not_grow_with_models_versions_or_history(users, client, settings):
    client.force_login(users["operator"])
    grow(users, range(2), versions=2)
    few = queries(client)
    grow(users, range(2, 6), versions=3)
    for m in (0, 1):  # more versions and more history for the pages of m0
        for seed in range(2, 5):
            register(f"m{m}", users["engineer"], seed=seed + 1)
    many = queries(client)
    assert many == few, {page: (few[page], many[page]) for page in PAGES}
    assert max(many.values()) <= 30, many
