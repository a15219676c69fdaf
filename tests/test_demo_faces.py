"""The demo's face detector on a real MLflow store: BlazeFace v1 in production finds the astronaut's face,
v2 (a stricter suppression) is the canary and drops the cat's false face only, and v3 (v1's file with
the form's ImageNet normalization) is flagged red by its approval evidence and its pre-flight, the
preprocessing named; run as a canary on live traffic, it is charted on the monitoring page and aborted
by the canary analysis."""

import json
import os

import pytest
from django.test import Client

from controlplane.demo import demo_users, faces_demo
from core.roles import Role
from monitoring import collection
from registry import services as registry
from registry.evidence import version_evidence
from registry.models import ModelState
from releases.canary import canary_analyze, canary_plan_set
from releases.preflight import preflight_latest, preflight_passed
from serving import sample_store, services
from serving.reference_photos import face_set

pytestmark = pytest.mark.django_db(transaction=True)  # the sample store writes from its own thread


def test_the_face_demo_goes_live_with_a_canary_and_a_flagged_fault():
    said: list[str] = []
    users = demo_users()
    faces_demo(users, progress=said.append)
    model = ModelState.objects.get(name="faces")
    assert (model.production_version, model.canary_version) == (1, 2)

    photo = {p.name: p.data for p in face_set()}
    body = Client().post(
        "/v1/models/faces/predict", data=photo["astronaut"], content_type="image/jpeg", HTTP_X_ROUTING_KEY="a"
    )
    answer = services.predict(model_name="faces", data=photo["astronaut"], stage="production")
    assert body.status_code == 200 and body.json()["count"] == 1
    (face,) = answer["detections"]
    assert face["label"] == "face" and face["confidence"] == pytest.approx(0.92, abs=0.01)
    assert [face["box"][k] for k in ("x1", "y1", "x2", "y2")] == pytest.approx([179, 82, 274, 177], abs=3)

    # v2 differs as its description says: the cat is no longer a face, the astronaut still is.
    for version, cat_faces in ((1, 1), (2, 0)):
        assert (
            services.predict(model_name="faces", data=photo["chelsea"], version=version)["count"] == cat_faces
        )
        assert (
            services.predict(model_name="faces", data=photo["astronaut-head"], version=version)["count"] == 1
        )
    v2 = preflight_latest(model_name="faces", version=2)
    assert preflight_passed(v2, 1)[0] and 0.9 <= v2.result["agreement"] < 1
    # nine photos with a face, and three false ones (the cat, the flower, the colour wheel) at 0.51–0.60
    assert v2.result["comparison"]["per_class"] == [
        {"label": "face", "production": 12, "lost": 1, "gained": 0}
    ]

    # v3: red in the evidence (its normalization) and in its pre-flight (the faces it loses).
    v3 = preflight_latest(model_name="faces", version=3)
    passed, why = preflight_passed(v3, 1)
    assert not passed and why.startswith("box f1")
    evidence = version_evidence(model=model, version=3)
    flags = evidence.red_flags
    assert any(line.startswith("normalization: scale, mean or std differ") for line in flags), flags
    assert any(line.startswith("Pre-flight: box f1") for line in flags), flags
    assert v3.result["comparison"]["per_class"] == [
        {"label": "face", "production": 12, "lost": 11, "gained": 0}
    ]
    assert any("pre-flight of v3 against v1: FAILED" in line for line in said), said

    # …and what a person opening v3's page reads first
    viewer = Client()
    viewer.force_login(users[Role.VIEWER][0])
    page = viewer.get("/models/faces/versions/3/").content.decode()
    flagged = page[page.index('data-testid="red-flags"') :][:2000]
    assert "normalization: scale, mean or std differ" in flagged and "Pre-flight: box f1" in flagged


def test_the_faulty_version_as_a_canary_is_aborted_by_the_analysis(live_server, settings):
    settings.SERVING_METRICS_URLS = [f"{live_server.url}/metrics"]
    users = demo_users()
    engineer, operator = users[Role.ENGINEER][0], users[Role.OPERATOR][0]
    faces_demo(users, progress=lambda line: None)
    registry.canary_abort(model_name="faces", actor=operator, reason="make room for v3")
    registry.canary_start(model_name="faces", version=3, weight=10, actor=engineer, reason="v3 on 10 %")
    canary_plan_set(model_name="faces", actor=users[Role.ADMIN][0], interval_seconds=0, min_samples=50)
    photos = face_set()

    def send(rounds: int) -> None:
        for _ in range(rounds):
            for photo in photos:
                for stage in ("production", "canary"):
                    data = photo.data + os.urandom(8)  # the same pixels, never an answer from the cache
                    services.predict(model_name="faces", data=data, stage=stage)
        sample_store.drain()  # production's inputs are offered to the store, kept from its own thread

    send(1)
    collection.collect()  # the first look only sets the starting point
    send(3)
    collection.collect()
    viewer = Client()
    viewer.force_login(users[Role.VIEWER][0])
    page = viewer.get("/models/faces/monitoring").content.decode()
    for title in ("Boxes per image: production vs canary", "Boxes by class"):
        assert json.dumps(title)[1:-1] in page, title  # the detector's signals are charted
    analysis = canary_analyze(model_name="faces")
    assert (analysis.verdict, analysis.action) == ("fail", "aborted"), analysis.checks
    failed = {check["check"] for check in analysis.checks if check["drift"]}
    assert {"detections per image", "mean detections per image"} <= failed, failed
    assert ModelState.objects.get(name="faces").canary_version is None
