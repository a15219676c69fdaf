"""The sample store keeps real production inputs — opt-in, bounded, in storage (never the database),
for live production traffic only — and forgets them on demand or after their retention."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from serving import sample_store
from serving.models import SamplePolicy, StoredSample
from tests.factories import png
from tests.helpers import assert_error, token_client

pytestmark = pytest.mark.django_db(transaction=True)  # the store writes from its own thread


def send(seeds, client=None, path="/v1/models/cats/predict"):
    client = client or Client()
    for seed in seeds:
        assert client.post(path, data=png(seed), content_type="image/png").status_code == 200
    sample_store.drain()


def files(settings) -> list[Path]:
    root = Path(settings.STORAGES["samples"]["OPTIONS"]["location"])
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_off_by_default_nothing_is_kept(model_with_versions, settings):
    send(range(5))
    assert StoredSample.objects.count() == 0 and files(settings) == []


def test_on_it_keeps_live_production_inputs_in_storage(model_with_versions, users, settings):
    sample_store.policy_set(model="cats", actor=users["engineer"], enabled=True)
    send(range(3))
    send([100], path="/v1/models/cats/predict?version=2")  # a pinned version: not production traffic
    viewer = Client()
    viewer.force_login(users["viewer"])
    send([101], client=viewer, path="/models/cats/try/predict")  # the tester: not live traffic
    kept = list(StoredSample.objects.order_by("id"))
    assert len(kept) == 3 and {s.version for s in kept} == {1}
    assert [p.name for p in files(settings)] == sorted(f"{s.sha256}.png" for s in kept)
    assert sample_store.sample_bytes(kept[0]) == png(0)
    assert (kept[0].width, kept[0].height, kept[0].content_type) == (48, 32, "image/png")


def test_the_reservoir_holds_its_count_and_bytes_caps(model_with_versions, users, settings):
    sample_store.policy_set(model="cats", actor=users["engineer"], enabled=True, max_count=5)
    send(range(40))
    assert StoredSample.objects.count() == 5 and len(files(settings)) == 5
    assert SamplePolicy.objects.get(model="cats").seen == 40
    sample_store.policy_set(
        model="cats", actor=users["engineer"], enabled=True, max_count=3
    )  # applies at once
    assert StoredSample.objects.count() == 3 and len(files(settings)) == 3
    size = max(s.size_bytes for s in StoredSample.objects.all())
    SamplePolicy.objects.filter(model="cats").update(max_bytes=size * 2)  # below the API's floor, to test it
    assert sample_store.limits_enforce() == 1  # the periodic task: the oldest goes until it fits
    assert StoredSample.objects.count() == 2 and len(files(settings)) == 2


def test_purge_and_retention_delete_files_and_rows(model_with_versions, users, settings):
    sample_store.policy_set(model="cats", actor=users["engineer"], enabled=True, retention_days=1)
    send(range(4))
    StoredSample.objects.filter(pk__in=list(StoredSample.objects.values_list("pk", flat=True)[:2])).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    assert sample_store.limits_enforce() == 2
    assert StoredSample.objects.count() == 2 and len(files(settings)) == 2
    with pytest.raises(Exception, match="role"):
        sample_store.purge(model="cats", actor=users["viewer"])
    assert sample_store.purge(model="cats", actor=users["operator"]) == 2
    assert StoredSample.objects.count() == 0 and files(settings) == []


def test_the_api_shows_and_sets_the_store(model_with_versions, users):
    eng, viewer = token_client(users["engineer"]), token_client(users["viewer"])
    assert viewer.get("/api/v1/models/cats/samples").json()["enabled"] is False
    assert_error(
        viewer.put("/api/v1/models/cats/samples", {"enabled": True}, format="json"), 403, "role_required"
    )
    assert_error(eng.put("/api/v1/models/cats/samples", {"enabled": "yes"}, format="json"), 400, "invalid")
    assert_error(
        eng.put("/api/v1/models/cats/samples", {"enabled": True, "max_count": 0}, format="json"), 400
    )
    on = eng.put("/api/v1/models/cats/samples", {"enabled": True, "max_count": 20}, format="json").json()
    assert (on["enabled"], on["max_count"], on["count"]) == (True, 20, 0)
    send(range(2))
    assert eng.get("/api/v1/models/cats/samples").json()["count"] == 2
    assert eng.post("/api/v1/models/cats/samples/purge").json() == {"purged": 2}
    assert_error(eng.get("/api/v1/models/nope/samples"), 404, "model_not_found")


def test_the_model_page_says_what_it_holds_and_why(model_with_versions, users, client):
    sample_store.policy_set(model="cats", actor=users["engineer"], enabled=True)
    send(range(2))
    client.force_login(users["viewer"])
    card = client.get("/models/cats/samples").content.decode()
    assert "Holds <strong>2</strong>" in card and "pre-flighted" in card
    assert "samples-off" not in card  # a viewer sees, but may not change it
    client.force_login(users["operator"])
    assert 'data-testid="samples-off"' in client.get("/models/cats/samples").content.decode()
    image = client.get(f"/models/cats/samples/{StoredSample.objects.first().pk}/image")
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert client.get("/models/cats/samples/999999/image").status_code == 404
    assert client.get("/models/dogs/samples/1/image").status_code == 404
