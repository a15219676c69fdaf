"""A model's first way to production: with nothing in production a canary answers all traffic and the
production gates have nothing to compare with — the pages and the API say so instead of "5 %" and a
silent pass."""

import pytest
from django.test import Client

from registry import services
from tests.factories import png, register, start_canary, to_production
from tests.helpers import token_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def first(users):
    register("cats", users["engineer"], seed=1)


def test_a_first_canary_says_it_takes_all_traffic(users, first):
    eng = token_client(users["engineer"])
    services.version_stage_staging(model_name="cats", version=1, actor=users["engineer"])
    answer = eng.post(
        "/api/v1/models/cats/versions/1/promote",
        {"to": "canary", "weight": 5, "expected_canary": None},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    state = answer.json()["state"]
    assert (state["canary_weight"], state["canary_effective_weight"]) == (5, 100)
    assert "nothing is in production" in state["canary_note"]
    detail = eng.get("/api/v1/models/cats/").json()
    assert (detail["canary_weight"], detail["canary_effective_weight"]) == (5, 100)
    assert "answers all traffic" in detail["canary_note"]
    client = Client()
    client.force_login(users["viewer"])
    page = client.get("/models/cats/").content.decode()
    assert '<small data-testid="canary-share">100 % of traffic</small>' in page
    assert "5 % of traffic" not in page and 'data-testid="canary-note"' in page


def test_a_first_canary_answers_every_request_and_a_later_one_its_weight(users, first):
    start_canary(1, 5, users)
    stages = {Client().post("/v1/models/cats/predict", data=png(i), content_type="image/png").json()["stage"]
              for i in range(20)}  # fmt: skip
    assert stages == {"canary"}
    services.production_request(model_name="cats", version=1, actor=users["engineer"])
    services.production_approve(model_name="cats", actor=users["approver"])
    register("cats", users["engineer"], seed=2)
    start_canary(2, 5, users)
    detail = token_client(users["viewer"]).get("/api/v1/models/cats/").json()
    assert (detail["canary_effective_weight"], detail["canary_note"]) == (5, None)
    client = Client()
    client.force_login(users["viewer"])
    page = client.get("/models/cats/").content.decode()
    assert '<small data-testid="canary-share">5 % of traffic</small>' in page
    assert 'data-testid="canary-note"' not in page


def test_a_first_production_request_says_the_gates_do_not_apply(users, first, settings):
    settings.PROMOTION_GATES = ["canary_analysis", "preflight"]
    start_canary(1, 5, users)
    request = services.production_request(model_name="cats", version=1, actor=users["engineer"])
    event = request.events.get()
    assert event.details["gates_not_applied"].startswith("no production version to compare against")
    evidence = token_client(users["approver"]).get("/api/v1/models/cats/versions/1/evidence").json()
    gates = evidence["gates"]
    assert (gates["applied"], gates["names"], gates["failures"]) == (
        False,
        ["canary_analysis", "preflight"],
        [],
    )
    assert gates["reason"].startswith("no production version to compare against")
    client = Client()
    client.force_login(users["approver"])
    page = client.get("/models/cats/").content.decode()
    assert 'data-testid="gates-not-applied"' in page and "no production version to compare against" in page


def test_with_production_the_gates_apply_and_say_what_stops_a_version(users, first, settings):
    to_production("cats", 1, users)
    register("cats", users["engineer"], seed=2)
    start_canary(2, 5, users)
    settings.PROMOTION_GATES = ["canary_analysis"]
    gates = token_client(users["approver"]).get("/api/v1/models/cats/versions/2/evidence").json()["gates"]
    assert (gates["applied"], gates["reason"]) == (True, "")
    assert gates["failures"] == ["no canary analysis has passed (none has run)"]
