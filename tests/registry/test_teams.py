"""Teams own models: a role held in a team acts on that team's models only; roles for all models act on
every model. Through the API, the services and the pages."""

import json

import pytest
from django.test import Client

from core.models import ModelOwnership
from modelspec.examples import tiny_classifier_onnx
from registry import services
from registry.models import ModelState
from tests.factories import METADATA, give_model, make_user, register, team_member, to_production
from tests.helpers import assert_error, seen, token_client
from tests.test_pages_by_role import EVERYONE, MAY, Forms

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_teams(users):
    """cats (team vision) and dogs (team audio), each with v1 in production and v2 in staging."""
    for name, team in (("cats", "vision"), ("dogs", "audio")):
        register(name, users["engineer"], seed=1)
        register(name, users["engineer"], seed=2)
        to_production(name, 1, users)
        services.version_stage_staging(model_name=name, version=2, actor=users["engineer2"])
        give_model(name, team)
    return {
        "eng": team_member(make_user("v-eng"), "vision", "engineer"),
        "eng2": team_member(make_user("v-eng2"), "vision", "engineer"),
        "appr": team_member(make_user("v-appr"), "vision", "approver"),
        "op": team_member(make_user("v-op"), "vision", "operator"),
        "both": team_member(team_member(make_user("both-eng"), "vision", "engineer"), "audio", "engineer"),
    }


def v2_to_production(name, users):
    services.canary_start(model_name=name, version=2, weight=5, actor=users["engineer"])
    services.production_request(model_name=name, version=2, actor=users["engineer"])
    services.production_approve(model_name=name, actor=users["approver"])


def canary(client, name):
    return client.post(
        f"/api/v1/models/{name}/versions/2/promote", {"to": "canary", "weight": 5, **seen(name)}
    )


def test_team_engineer_starts_a_canary_on_its_teams_model_only(two_teams):
    client = token_client(two_teams["eng"])
    assert canary(client, "cats").status_code == 200
    error = assert_error(canary(client, "dogs"), 403, "forbidden")
    assert "'audio'" in error["message"] and "'vision'" in error["message"] and error["team"] == "audio"
    assert ModelState.objects.get(name="dogs").canary_version is None


def test_team_approver_cannot_approve_another_teams_model(two_teams, users):
    for name in ("cats", "dogs"):
        services.canary_start(model_name=name, version=2, weight=5, actor=users["engineer"])
        services.production_request(model_name=name, version=2, actor=users["engineer"])
    client = token_client(two_teams["appr"])
    assert_error(
        client.post("/api/v1/models/dogs/production-request/approve", seen("dogs")), 403, "forbidden"
    )
    assert ModelState.objects.get(name="dogs").production_version == 1
    assert client.post("/api/v1/models/cats/production-request/approve", seen("cats")).status_code == 200
    assert ModelState.objects.get(name="cats").production_version == 2


def test_team_operator_cannot_roll_back_another_teams_model(two_teams, users):
    for name in ("cats", "dogs"):
        v2_to_production(name, users)
    client = token_client(two_teams["op"])
    assert_error(client.post("/api/v1/models/dogs/rollback", seen("dogs")), 403, "forbidden")
    assert ModelState.objects.get(name="dogs").production_version == 2
    assert client.post("/api/v1/models/cats/rollback", seen("cats")).status_code == 200
    assert ModelState.objects.get(name="cats").production_version == 1


def test_roles_for_all_models_act_on_every_teams_model(two_teams, users):
    for name in ("cats", "dogs"):
        assert canary(token_client(users["engineer"]), name).status_code == 200
        assert token_client(users["operator"]).post(f"/api/v1/models/{name}/canary/abort",
                                                    seen(name, reason="global")).status_code == 200  # fmt: skip


def test_a_user_in_two_teams_acts_on_both_teams_models(two_teams):
    client = token_client(two_teams["both"])
    assert canary(client, "cats").status_code == 200
    assert canary(client, "dogs").status_code == 200
    me = client.get("/api/v1/me").json()
    assert me["roles"] == [] and me["teams"] == {"audio": ["engineer"], "vision": ["engineer"]}


def test_a_team_role_is_no_role_on_a_model_of_no_team(two_teams):
    ModelOwnership.objects.filter(model_name="dogs").delete()
    assert_error(canary(token_client(two_teams["eng"]), "dogs"), 403, "forbidden")
    # a team role without the permission at all is told which role it needs
    assert_error(canary(token_client(two_teams["op"]), "dogs"), 403, "role_required")


def test_the_service_refuses_too(two_teams):
    with pytest.raises(Exception, match="audio"):
        services.canary_start(model_name="dogs", version=2, actor=two_teams["eng"])


def test_a_model_read_shows_its_team_and_an_admin_sets_it(two_teams, users):
    admin = token_client(users["admin"])
    assert admin.get("/api/v1/models/cats/").json()["team"] == "vision"
    listed = {m["name"]: m["team"] for m in admin.get("/api/v1/models/").json()["models"]}
    assert listed == {"cats": "vision", "dogs": "audio"}
    answer = admin.patch("/api/v1/models/dogs/", {"team": "vision"}, format="json")
    assert answer.status_code == 200 and answer.json()["team"] == "vision"
    assert canary(token_client(two_teams["eng"]), "dogs").status_code == 200
    assert_error(admin.patch("/api/v1/models/dogs/", {"team": "nobody"}, format="json"), 400, "invalid_team")
    assert admin.patch("/api/v1/models/dogs/", {"team": None}, format="json").json()["team"] is None
    engineer = token_client(users["engineer"])
    assert_error(
        engineer.patch("/api/v1/models/dogs/", {"team": "audio"}, format="json"), 403, "role_required"
    )


def test_a_new_model_registered_by_a_team_engineer_belongs_to_the_team(two_teams, users):
    register("birds", two_teams["eng"], seed=3)
    assert ModelOwnership.objects.get(model_name="birds").team.slug == "vision"
    register("birds", two_teams["eng2"], seed=4)  # the team's other engineer adds a version
    with pytest.raises(Exception, match="'vision'"):
        register("birds", team_member(make_user("a-eng"), "audio", "engineer"), seed=5)
    register("owls", users["engineer"], seed=3)  # an engineer for all models: no team
    assert not ModelOwnership.objects.filter(model_name="owls").exists()


def test_an_engineer_of_several_teams_names_the_new_models_team(two_teams, users):
    both = token_client(two_teams["both"])
    from django.core.files.uploadedfile import SimpleUploadedFile

    def register_as(client, name, **fields):
        data = {"file": SimpleUploadedFile("m.onnx", tiny_classifier_onnx(seed=7)), "metadata": json.dumps(METADATA),
                **fields}  # fmt: skip
        return client.post(f"/api/v1/models/{name}/versions/", data, format="multipart")

    error = assert_error(register_as(both, "hawks"), 400, "team_required")
    assert "audio, vision" in error["message"] and not ModelState.objects.filter(name="hawks").exists()
    assert register_as(both, "hawks", team="audio").status_code == 201
    assert ModelOwnership.objects.get(model_name="hawks").team.slug == "audio"
    assert_error(
        register_as(both, "hawks", team="vision"), 400, "invalid_team"
    )  # a known model keeps its team
    assert register_as(both, "hawks").status_code == 201  # a known model: no team needed
    assert_error(register_as(token_client(two_teams["eng"]), "crows", team="audio"), 403, "forbidden")
    assert_error(register_as(both, "crows", team="nobody"), 400, "invalid_team")
    assert register_as(token_client(users["engineer"]), "crows", team="vision").status_code == 201
    assert ModelOwnership.objects.get(model_name="crows").team.slug == "vision"
    # the page offers the teams one may register for
    page = Client()
    page.force_login(two_teams["both"])
    form = page.get("/register/").content.decode()
    assert '<option value="audio">audio</option>' in form and '<option value="vision">vision</option>' in form


def test_team_monitoring_settings_are_scoped(two_teams):
    client = token_client(two_teams["op"])
    assert (
        client.put("/api/v1/models/cats/canary-plan", {"interval_seconds": 600}, format="json").status_code
        == 200
    )
    assert_error(
        client.put("/api/v1/models/dogs/canary-plan", {"interval_seconds": 600}, format="json"),
        403,
        "forbidden",
    )


@pytest.mark.parametrize("member", ["eng", "appr", "op"])
def test_pages_offer_a_team_role_its_buttons_on_its_teams_models_only(member, two_teams, users):
    role = {"eng": "engineer", "appr": "approver", "op": "operator"}[member]
    for name in ("cats", "dogs"):
        v2_to_production(name, users)  # v1 is the rollback target
    browser = Client()
    browser.force_login(two_teams[member])
    for name, own in (("cats", True), ("dogs", False)):
        offered = set()
        for path in (f"/models/{name}/", f"/models/{name}/monitoring/settings", f"/models/{name}/samples"):
            page = browser.get(path)
            assert page.status_code == 200, path
            parser = Forms(path)
            parser.feed(page.content.decode())
            offered |= set(parser.found) - EVERYONE
        assert all(role in MAY[form] for form in offered), offered
        assert bool(offered) == (own and role != "approver"), (name, offered)
    listed = browser.get("/").content.decode()
    assert ('data-testid="rollback-cats"' in listed) == (role == "operator")
    assert 'data-testid="rollback-dogs"' not in listed
