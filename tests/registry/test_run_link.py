"""A version's run links to the tracking server's UI when MLFLOW_UI_URL names it."""

import re

import pytest

from tests.factories import register

pytestmark = pytest.mark.django_db


def test_the_run_links_to_the_tracking_ui_only_when_configured(client, users, settings, mlflow_client):
    registered = register("cats", users["engineer"])
    run = mlflow_client.get_run(registered.version.run_id)
    client.force_login(users["viewer"])
    settings.MLFLOW_UI_URL = ""
    assert 'data-testid="run-link"' not in client.get("/models/cats/versions/1/").content.decode()
    settings.MLFLOW_UI_URL = "https://mlflow.example.com"
    for path in ("/models/cats/versions/1/", "/models/cats/"):
        page = client.get(path).content.decode()
        links = re.findall(r'href="(https://mlflow\.example\.com/[^"]+)"', page)
        assert links == [
            f"https://mlflow.example.com/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        ], path
