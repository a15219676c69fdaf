"""A version's description and own tags are editable, through the API and the version page: MLflow's
version is updated and the model's configuration history records who changed what."""

import pytest

from tests.factories import register

pytestmark = pytest.mark.django_db


@pytest.fixture
def cats(users):
    return register("cats", users["engineer"], tags={"team": "vision", "stale": "yes"}, description="first")


def test_the_api_changes_description_and_tags_in_mlflow_and_the_history(cats, api, mlflow_client):
    answer = api("engineer").patch(
        "/api/v1/models/cats/versions/1/",
        {"description": "retrained on more data", "tags": {"dataset": "coco-2017", "stale": None}},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    assert answer.json() == {
        "description": "retrained on more data",
        "tags": {"team": "vision", "dataset": "coco-2017"},
    }
    version = mlflow_client.get_model_version("cats", "1")
    assert version.description == "retrained on more data"
    assert version.tags["dataset"] == "coco-2017" and "stale" not in version.tags
    assert version.tags["cp.sha256"]  # ours are untouched
    change = api("viewer").get("/api/v1/models/cats/config-history").json()["changes"][0]
    assert (change["kind"], change["action"], change["actor"], change["subject"]) == (
        "version",
        "updated",
        "engineer",
        "1",
    )
    assert (
        change["before"]["tags"] == {"team": "vision", "stale": "yes"}
        and change["before"]["description"] == "first"
    )


@pytest.mark.parametrize(
    "body, code",
    [
        ({"tags": {"cp.sha256": "x"}}, "invalid_tag"),
        ({"tags": {"bad\nkey": "x"}}, "invalid_tag"),
        ({}, "nothing_to_change"),
        ({"descripton": "typo"}, "invalid"),
    ],
)
def test_bad_edits_are_refused_and_change_nothing(cats, api, mlflow_client, body, code):
    answer = api("engineer").patch("/api/v1/models/cats/versions/1/", body, format="json")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == code
    assert mlflow_client.get_model_version("cats", "1").description == "first"


def test_only_who_may_register_may_edit(cats, api):
    assert (
        api("viewer")
        .patch("/api/v1/models/cats/versions/1/", {"description": "x"}, format="json")
        .status_code
        == 403
    )
    assert (
        api("engineer")
        .patch("/api/v1/models/cats/versions/9/", {"description": "x"}, format="json")
        .status_code
        == 404
    )


def test_the_version_page_edits_with_key_value_lines(cats, client, users, mlflow_client):
    client.force_login(users["viewer"])
    assert 'data-testid="version-edit"' not in client.get("/models/cats/versions/1/").content.decode()
    client.force_login(users["engineer"])
    page = client.get("/models/cats/versions/1/").content.decode()
    assert 'data-testid="version-edit"' in page and "team=vision" in page
    answer = client.post(
        "/models/cats/versions/1/edit",
        {"description": "first", "tags": "team=vision\nowner = ana\n"},
        follow=True,
    )
    assert "Saved v1" in answer.content.decode()
    tags = mlflow_client.get_model_version("cats", "1").tags
    assert tags["owner"] == "ana" and "stale" not in tags
    bad = client.post(
        "/models/cats/versions/1/edit", {"description": "first", "tags": "no equals sign"}, follow=True
    )
    assert "is not key=value" in bad.content.decode()


def test_a_tag_value_must_be_text(cats, api):
    answer = api("engineer").patch("/api/v1/models/cats/versions/1/", {"tags": {"n": 0}}, format="json")
    assert answer.status_code == 400
