"""The models list searches by name, stage, tag (MLflow's version tags) and team, and pages."""

import pytest

from registry import views
from tests.factories import give_model, register, to_production

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(users):
    register("cats-detector", users["engineer"], seed=1, tags={"team": "vision", "dataset": "coco"})
    to_production("cats-detector", 1, users)
    register("dogs", users["engineer"], seed=2, tags={"team": "vision"})
    register("cats-classifier", users["engineer"], seed=3, tags={"team": "retail"})
    give_model("dogs", "pets")


def names(client, query: str) -> list[str]:
    page = client.get(f"/?{query}")
    assert page.status_code == 200
    return [row.split('"')[0] for row in page.content.decode().split('<tr data-model="')[1:]]


def test_search_by_name_stage_tag_and_team(client, users, fleet):
    client.force_login(users["viewer"])
    assert names(client, "") == ["cats-classifier", "cats-detector", "dogs"]
    assert names(client, "q=CATS") == ["cats-classifier", "cats-detector"]
    assert names(client, "stage=production") == ["cats-detector"]
    assert names(client, "stage=none") == ["cats-classifier", "dogs"]
    assert names(client, "tag=team%3Dvision") == ["cats-detector", "dogs"]
    assert names(client, "tag=dataset") == ["cats-detector"]
    assert names(client, "q=cats&tag=team%3Dvision") == ["cats-detector"]
    assert names(client, "team=pets") == ["dogs"]
    assert "No model matches this search." in client.get("/?q=zebra").content.decode()


@pytest.mark.parametrize("query", ["stage=retired", "tag=team%3D%27x%27", "tag=bad%20key", "q=" + "x" * 101])
def test_a_bad_search_is_a_message_not_an_error(client, users, fleet, query):
    client.force_login(users["viewer"])
    page = client.get(f"/?{query}")
    assert page.status_code == 200 and 'class="flash error"' in page.content.decode()


def test_pages_keep_the_search(client, users, fleet, monkeypatch):
    monkeypatch.setattr(views, "MODELS_PER_PAGE", 1)
    client.force_login(users["viewer"])
    assert names(client, "q=cats") == ["cats-classifier"]
    second = client.get("/?q=cats&page=2").content.decode()
    assert 'data-model="cats-detector"' in second and "Page 2 of 2" in second
    assert 'href="?q=cats&amp;page=1"' in second
    refresh = client.get("/?q=cats&page=2", HTTP_HX_REQUEST="true").content.decode()  # the 15 s refresh
    assert 'data-model="cats-detector"' in refresh and "cats-classifier" not in refresh
