"""The promotion workflow against a real MLflow store: stages, rules, approvals, rollback, history."""

import hashlib
from pathlib import Path

import pytest
from django.utils import timezone

from core.exceptions import BadRequest, Forbidden
from registry import selectors, services
from registry.choices import Action
from registry.exceptions import SelfApproval, TransitionRefused
from registry.models import ModelState, PromotionEvent
from tests.factories import register, to_production

pytestmark = pytest.mark.django_db


def aliases(client, name):
    return {alias: int(v) for alias, v in client.get_registered_model(name).aliases.items()}


def test_full_path_moves_mlflow_aliases_and_records_each_step(model_with_versions, users, mlflow_client):
    eng, appr = users["engineer"], users["approver"]
    services.version_stage_staging(model_name="cats", version=2, actor=eng)
    assert aliases(mlflow_client, "cats") == {"production": 1, "staging": 2}
    services.canary_start(model_name="cats", version=2, weight=20, actor=eng)
    assert aliases(mlflow_client, "cats") == {"production": 1, "canary": 2}
    services.canary_set_weight(model_name="cats", weight=40, actor=eng)
    request = services.production_request(model_name="cats", version=2, actor=eng, reason="looks good")
    event = services.production_approve(model_name="cats", actor=appr, reason="ok")
    assert aliases(mlflow_client, "cats") == {"production": 2}
    assert (event.from_version, event.to_version, event.request_id) == (1, 2, request.id)
    assert event.details["replaced"] == 1
    state = ModelState.objects.get(name="cats")
    assert (state.production_version, state.canary_version, state.canary_weight) == (2, None, 0)
    actions = list(PromotionEvent.objects.filter(model=state).order_by("id").values_list("action", flat=True))
    assert actions[-5:] == [
        Action.PROMOTE_STAGING,
        Action.CANARY_START,
        Action.CANARY_WEIGHT,
        Action.PRODUCTION_REQUEST,
        Action.PRODUCTION_APPROVE,
    ]


def test_models_uri_resolves_to_promoted_then_rolled_back_version(
    model_with_versions, users, mlflow_client, monkeypatch
):
    """What an MLflow-native consumer sees: models:/cats@production follows every promotion and rollback."""
    import mlflow

    # A consumer process configured the usual way, by environment.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_client.tracking_uri)

    def production_sha():
        local = mlflow.artifacts.download_artifacts(artifact_uri="models:/cats@production")
        return hashlib.sha256((Path(local) / "model.onnx").read_bytes()).hexdigest()

    to_production("cats", 2, users)
    assert int(mlflow_client.get_model_version_by_alias("cats", "production").version) == 2
    assert production_sha() == mlflow_client.get_model_version("cats", "2").tags["cp.sha256"]
    services.production_rollback(model_name="cats", actor=users["operator"], reason="bad confidence")
    assert int(mlflow_client.get_model_version_by_alias("cats", "production").version) == 1
    assert production_sha() == mlflow_client.get_model_version("cats", "1").tags["cp.sha256"]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (
            lambda u: services.canary_start(model_name="cats", version=2, weight=5, actor=u["engineer"]),
            "stage_skipped",
        ),
        (
            lambda u: services.production_request(model_name="cats", version=2, actor=u["engineer"]),
            "stage_skipped",
        ),
        (
            lambda u: services.version_stage_staging(model_name="cats", version=1, actor=u["engineer"]),
            "already_live",
        ),
        (lambda u: services.canary_abort(model_name="cats", actor=u["engineer"]), "no_canary"),
        (lambda u: services.canary_set_weight(model_name="cats", weight=5, actor=u["engineer"]), "no_canary"),
        (lambda u: services.production_approve(model_name="cats", actor=u["approver"]), "no_request"),
        (
            lambda u: services.production_rollback(model_name="cats", actor=u["operator"]),
            "no_rollback_target",
        ),
    ],
)
def test_invalid_transition_refused_with_rule_and_nothing_written(
    model_with_versions, users, mlflow_client, call, code
):
    before = PromotionEvent.objects.count()
    with pytest.raises(TransitionRefused) as refused:
        call(users)
    assert refused.value.code == code and refused.value.http_status == 409
    assert PromotionEvent.objects.count() == before
    assert aliases(mlflow_client, "cats") == {"production": 1}


def test_one_canary_at_a_time(model_with_versions, users):
    eng = users["engineer"]
    services.version_stage_staging(model_name="cats", version=2, actor=eng)
    services.canary_start(model_name="cats", version=2, weight=5, actor=eng)
    services.version_stage_staging(model_name="cats", version=3, actor=eng)
    with pytest.raises(TransitionRefused, match="one canary at a time: v2"):
        services.canary_start(model_name="cats", version=3, weight=5, actor=eng)


@pytest.mark.parametrize("weight", [0, 51, -3, "ten"])
def test_canary_weight_outside_1_to_50_is_bad_request(model_with_versions, users, weight):
    services.version_stage_staging(model_name="cats", version=2, actor=users["engineer"])
    with pytest.raises(BadRequest, match="canary weight"):
        services.canary_start(model_name="cats", version=2, weight=weight, actor=users["engineer"])


def test_requester_cannot_approve_own_request_even_as_approver_and_engineer(model_with_versions, users):
    from tests.factories import make_user

    both = make_user("both", "engineer", "approver")
    services.version_stage_staging(model_name="cats", version=2, actor=both)
    services.canary_start(model_name="cats", version=2, weight=5, actor=both)
    services.production_request(model_name="cats", version=2, actor=both)
    with pytest.raises(SelfApproval):
        services.production_approve(model_name="cats", actor=both)
    services.production_approve(model_name="cats", actor=users["approver"])
    assert ModelState.objects.get(name="cats").production_version == 2


def test_reject_keeps_canary_and_production(model_with_versions, users, mlflow_client):
    eng = users["engineer"]
    services.version_stage_staging(model_name="cats", version=2, actor=eng)
    services.canary_start(model_name="cats", version=2, weight=5, actor=eng)
    services.production_request(model_name="cats", version=2, actor=eng)
    services.production_reject(model_name="cats", actor=users["approver"], reason="latency too high")
    assert aliases(mlflow_client, "cats") == {"production": 1, "canary": 2}
    assert selectors.pending_request(model=ModelState.objects.get(name="cats")) is None


def test_abort_canary_cancels_its_pending_request(model_with_versions, users, mlflow_client):
    eng = users["engineer"]
    services.version_stage_staging(model_name="cats", version=2, actor=eng)
    services.canary_start(model_name="cats", version=2, weight=5, actor=eng)
    request = services.production_request(model_name="cats", version=2, actor=eng)
    services.canary_abort(model_name="cats", actor=users["operator"], reason="errors up")
    request.refresh_from_db()
    assert request.status == "cancelled"
    assert aliases(mlflow_client, "cats") == {"production": 1}


def test_admin_override_skips_stage_with_reason_recorded(model_with_versions, users, mlflow_client):
    with pytest.raises(BadRequest, match="written reason"):
        services.canary_start(model_name="cats", version=3, weight=5, actor=users["admin"], override=True)
    with pytest.raises(TransitionRefused, match="Only an admin"):
        services.canary_start(
            model_name="cats", version=3, weight=5, actor=users["engineer"], override=True, reason="hurry"
        )
    event = services.canary_start(
        model_name="cats",
        version=3,
        weight=5,
        actor=users["admin"],
        override=True,
        reason="hotfix for customer X",
    )
    assert event.override and event.reason == "hotfix for customer X"
    assert aliases(mlflow_client, "cats")["canary"] == 3


def test_rollback_walks_back_through_good_versions(model_with_versions, users, mlflow_client):
    to_production("cats", 2, users)
    to_production("cats", 3, users)
    op = users["operator"]
    first = services.production_rollback(model_name="cats", actor=op, reason="v3 bad")
    assert (first.from_version, first.to_version) == (3, 2)
    second = services.production_rollback(model_name="cats", actor=op, reason="v2 bad too")
    assert (second.from_version, second.to_version) == (2, 1)
    assert aliases(mlflow_client, "cats") == {"production": 1}
    with pytest.raises(TransitionRefused):
        services.production_rollback(model_name="cats", actor=op)


def test_production_at_time_answers_from_history(model_with_versions, users):
    model = ModelState.objects.get(name="cats")
    before_v2 = timezone.now()
    to_production("cats", 2, users)
    after_v2 = timezone.now()
    services.production_rollback(model_name="cats", actor=users["operator"])
    assert selectors.production_version_at(model=model, at=before_v2).version == 1
    assert selectors.production_version_at(model=model, at=after_v2).version == 2
    assert selectors.production_version_at(model=model, at=timezone.now()).version == 1
    first_event = PromotionEvent.objects.filter(model=model).order_by("created_at").first()
    assert selectors.production_version_at(model=model, at=first_event.created_at).version is None


def test_history_cannot_be_edited_or_deleted_through_the_orm(model_with_versions):
    from registry.models import AppendOnlyError

    event = PromotionEvent.objects.first()
    event.reason = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        PromotionEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(AppendOnlyError):
        PromotionEvent.objects.all().delete()
    assert PromotionEvent.objects.get(pk=event.pk).reason != "rewritten"


def test_viewer_cannot_write(model_with_versions, users):
    with pytest.raises(Forbidden):
        services.production_rollback(model_name="cats", actor=users["viewer"])
    with pytest.raises(Forbidden):
        register("cats", users["viewer"])


def test_reconcile_finds_and_repairs_alias_moved_outside(model_with_versions, mlflow_client):
    mlflow_client.set_registered_model_alias("cats", "production", "3")
    diffs = services.model_reconcile(model_name="cats", fix=True)
    assert [(d.stage, d.ours, d.mlflow) for d in diffs] == [("production", 1, 3)]
    assert aliases(mlflow_client, "cats") == {"production": 1}
    assert services.model_reconcile(model_name="cats") == []
