"""SQL queries and MLflow requests per page are bounded: the models list, a model page, a version page and
the history API make as many queries with three times the models, versions and history as with a few
(no N + 1), and a model page asks MLflow the same few things however many versions it shows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import mlflow_gateway
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
        for version in (3, 4):  # more approved production requests in the timeline
            to_production(f"m{m}", version, users)
    many = queries(client)
    assert many == few, {page: (few[page], many[page]) for page in PAGES}
    assert max(many.values()) <= 30, many


def test_a_model_page_asks_mlflow_a_fixed_number_of_things_and_caches_the_runs(users, client):
    client.force_login(users["viewer"])
    register("few", users["engineer"], seed=1)
    for seed in range(12):
        register("many", users["engineer"], seed=seed + 1)
    counted = {}
    for name in ("few", "many"):
        before = mlflow_gateway.calls_made()
        page = client.get(f"/models/{name}/")
        assert page.status_code == 200
        counted[name] = mlflow_gateway.calls_made() - before
    assert counted["many"] == counted["few"] <= 5, counted  # versions, aliases, experiments, runs
    assert page.content.decode().count("onnx_bytes") >= 12  # every version's run metrics are on it
    before = mlflow_gateway.calls_made()
    assert client.get("/models/many/").status_code == 200
    # the runs came from the cache this time
    assert mlflow_gateway.calls_made() - before == counted["many"] - 2


def test_the_models_list_of_a_team_member_does_not_grow_with_models(users, client):
    from tests.factories import give_model, make_user, team_member

    client.force_login(team_member(make_user("vision-op"), "vision", "operator"))
    grow(users, range(2), versions=1)
    give_model("m0", "vision")
    few = queries(client)["models list"]
    grow(users, range(2, 8), versions=1)
    for m in range(2, 8, 2):
        give_model(f"m{m}", "vision")
    assert queries(client)["models list"] == few


def test_a_versions_metadata_is_read_from_mlflow_once_per_process_and_registry(users, settings, tmp_path):
    from registry import selectors
    from tests.factories import LABELS

    register("once", users["engineer"], seed=1)
    before = mlflow_gateway.calls_made()
    first = selectors.version_metadata(name="once", version=1)
    asked = mlflow_gateway.calls_made() - before
    assert asked > 0 and first.labels == tuple(LABELS)
    assert selectors.version_metadata(name="once", version=1) is first  # no second round trip
    assert mlflow_gateway.calls_made() - before == asked
    # Another registry (another store): its own read, never this one's answer.
    settings.MLFLOW_REGISTRY_URI = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    from core.exceptions import NotFound

    with pytest.raises(NotFound):
        selectors.version_metadata(name="once", version=1)
