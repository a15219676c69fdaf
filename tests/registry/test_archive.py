"""Archiving a version that never served production: hidden from the lists, no stage may be given to it,
restored on request; versions that served production, or hold a stage, cannot be archived. Every change
is a history event with who, when and why."""

import pytest
from django.test import Client

from registry.choices import Action
from registry.models import PromotionEvent
from tests.factories import register, to_production
from tests.helpers import assert_error, seen, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(users):
    for seed in (1, 2, 3):
        register("cats", users["engineer"], seed=seed)
    to_production("cats", 1, users)
    return token_client(users["engineer"])


def test_an_engineer_archives_a_never_live_version_and_restores_it(three, users):
    eng = three
    refused = eng.post("/api/v1/models/cats/versions/3/archive", seen(), format="json")
    assert assert_error(refused, 400)["message"]  # a reason is required
    archived = eng.post(
        "/api/v1/models/cats/versions/3/archive", seen(reason="wrong labels file"), format="json"
    )
    assert archived.status_code == 200, archived.content
    assert archived.json()["event"]["action"] == Action.VERSION_ARCHIVE
    version = eng.get("/api/v1/models/cats/versions/3/").json()
    assert version["archived"]["reason"] == "wrong labels file" and version["archived"]["by"] == "engineer"
    assert eng.get("/api/v1/models/cats/versions/2/").json()["archived"] is None

    # No stage may be given to it, by any path.
    for body in ({"to": "staging"}, {"to": "canary", "weight": 10}, {"to": "production"}):
        stopped = eng.post("/api/v1/models/cats/versions/3/promote", {**body, **seen()}, format="json")
        assert "archived" in assert_error(stopped, 409, "archived")["message"]
    again = eng.post("/api/v1/models/cats/versions/3/archive", seen(reason="twice"), format="json")
    assert_error(again, 409, "already_archived")

    restored = eng.post("/api/v1/models/cats/versions/3/restore", seen(reason="labels fixed"), format="json")
    assert restored.status_code == 200, restored.content
    assert eng.get("/api/v1/models/cats/versions/3/").json()["archived"] is None
    promoted = eng.post("/api/v1/models/cats/versions/3/promote", {"to": "staging", **seen()}, format="json")
    assert promoted.status_code == 200, promoted.content
    trail = list(PromotionEvent.objects.filter(version=3).order_by("id").values_list("action", "reason"))
    assert trail[-3:] == [
        (Action.VERSION_ARCHIVE, "wrong labels file"), (Action.VERSION_RESTORE, "labels fixed"),
        (Action.PROMOTE_STAGING, ""),
    ]  # fmt: skip


def test_versions_that_served_production_or_hold_a_stage_are_not_archived(three, users):
    eng = three
    assert_error(
        eng.post("/api/v1/models/cats/versions/1/archive", seen(reason="old"), format="json"),
        409,
        "version_live",
    )
    to_production("cats", 2, users)  # v1 served production, and is the rollback target
    assert_error(
        eng.post("/api/v1/models/cats/versions/1/archive", seen(reason="old"), format="json"),
        409,
        "served_production",
    )
    assert_error(
        eng.post("/api/v1/models/cats/versions/3/restore", seen(reason="?"), format="json"),
        409,
        "not_archived",
    )
    assert_error(eng.post("/api/v1/models/cats/versions/9/archive", seen(reason="x"), format="json"), 404)
    operator = token_client(users["operator"])
    assert_error(
        operator.post("/api/v1/models/cats/versions/3/archive", seen(reason="x"), format="json"), 403
    )


def test_the_pages_hide_an_archived_version_and_offer_archive_only_where_it_applies(three, users):
    page = Client()
    page.force_login(users["engineer"])
    version = page.get("/models/cats/versions/3/").content.decode()
    assert 'data-testid="version-archive"' in version and "data-confirm" in version
    assert 'data-testid="version-archive"' not in page.get("/models/cats/versions/1/").content.decode()
    posted = page.post(
        "/models/cats/actions/version_archive",
        {"version": 3, "reason": "duplicate export", **seen(), "next": "/models/cats/versions/3/"},
    )
    assert posted.status_code == 302
    shown = page.get("/models/cats/versions/3/").content.decode()
    assert (
        'data-testid="archived"' in shown and "duplicate export" in shown and 'data-testid="restore"' in shown
    )
    listed = page.get("/models/cats/").content.decode()
    assert 'data-version="3"' not in listed and "1 archived version hidden" in listed
    assert 'data-version="3"' in page.get("/models/cats/?archived=1").content.decode()
    approver = Client()
    approver.force_login(users["approver"])
    assert 'data-testid="restore"' not in approver.get("/models/cats/versions/3/").content.decode()
