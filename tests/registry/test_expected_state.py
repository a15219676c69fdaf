"""Every workflow write names the state it was decided on: two operators (or a retry) never walk
production back twice, and a stale decision is told what changed instead of acting."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from knox.models import AuthToken

from registry import services
from registry.models import ModelState, PromotionEvent
from tests.factories import register, to_production
from tests.helpers import assert_error, token_client


@pytest.fixture
def five_in_production(users):
    """'cats' v1…v5 each approved in turn: production v5, rollback target v4."""
    for seed in range(1, 6):
        register("cats", users["engineer"], seed=seed)
        to_production("cats", seed, users)
    return ModelState.objects.get(name="cats")


def rollbacks() -> int:
    return PromotionEvent.objects.filter(action="rollback").count()


@pytest.mark.django_db
def test_a_write_without_an_expectation_is_428_and_changes_nothing(users, five_in_production):
    op = token_client(users["operator"])
    error = assert_error(op.post("/api/v1/models/cats/rollback", {}), 428, "expected_state_required")
    assert "If-Match" in error["message"]
    assert rollbacks() == 0 and ModelState.objects.get(name="cats").production_version == 5


@pytest.mark.django_db
def test_the_same_rollback_retried_after_success_is_409_with_the_current_state(
    users, five_in_production, mlflow_client
):
    op = token_client(users["operator"])
    body = {"reason": "confidence fell", "expected_production": 5}
    first = op.post("/api/v1/models/cats/rollback", body, format="json")
    assert first.status_code == 200 and first.json()["state"]["production"] == 4
    again = op.post("/api/v1/models/cats/rollback", body, format="json")  # curl --retry, a double click
    error = assert_error(again, 409, "stale_state")
    assert error["current"]["production"] == 4 and error["current"]["last_change"]["action"] == "rollback"
    assert "last: rolled back v4 by operator; production is v4" in error["message"]
    assert rollbacks() == 1
    assert int(mlflow_client.get_model_version_by_alias("cats", "production").version) == 4


@pytest.mark.django_db
def test_if_match_is_the_etag_every_read_returns(users, five_in_production):
    op = token_client(users["operator"])
    read = op.get("/api/v1/models/cats/")
    etag = read["ETag"]
    assert etag == read.json()["etag"] == f'"{five_in_production.revision}"'
    listed = op.get("/api/v1/models/").json()["models"][0]
    assert listed["etag"] == etag
    services.canary_start(
        model_name="cats", version=1, weight=5, actor=users["admin"], override=True, reason="x"
    )
    error = assert_error(op.post("/api/v1/models/cats/rollback", {}, HTTP_IF_MATCH=etag), 409, "stale_state")
    assert error["current"]["canary"] == 1 and error["current"]["etag"] != etag
    done = op.post("/api/v1/models/cats/rollback", {}, HTTP_IF_MATCH=error["current"]["etag"])
    assert done.status_code == 200 and done.json()["state"]["production"] == 4
    assert_error(op.post("/api/v1/models/cats/rollback", {}, HTTP_IF_MATCH="*"), 400, "invalid_if_match")


@pytest.mark.django_db
def test_the_page_sends_what_it_showed_and_a_stale_page_is_told(users, five_in_production, client):
    client.force_login(users["operator"])
    page = client.get("/models/cats/")
    shown = five_in_production.revision
    assert f'name="expected_revision" value="{shown}"'.encode() in page.content
    services.production_rollback(model_name="cats", actor=users["admin"])  # another operator, first
    stale = client.post("/models/cats/actions/rollback", {"expected_revision": shown, "reason": "me too"})
    assert stale.status_code == 409
    assert b"changed since you looked" in stale.content and b"production is v4" in stale.content
    assert rollbacks() == 1


@pytest.mark.django_db(transaction=True)
def test_fifty_parallel_rollbacks_from_one_state_make_one_event(users, five_in_production, live_server):
    """Fifty operators' clicks and retries at once, over real HTTP, all decided on production v5."""
    token = AuthToken.objects.create(users["operator"])[1]
    etag = f'"{five_in_production.revision}"'

    def roll_back(i: int) -> int:
        headers = {"Authorization": f"Token {token}"}
        if i % 2:
            headers["If-Match"] = etag
            body = {"reason": f"click {i}"}
        else:
            body = {"reason": f"click {i}", "expected_production": 5}
        return requests.post(
            f"{live_server.url}/api/v1/models/cats/rollback", json=body, headers=headers, timeout=60
        ).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(roll_back, range(50)))
    assert statuses.count(200) == 1 and statuses.count(409) == 49, statuses
    assert rollbacks() == 1
    state = ModelState.objects.get(name="cats")
    assert state.production_version == 4
    assert services.model_reconcile(model_name="cats") == []  # MLflow's alias followed the one winner
