"""Monitoring's API: alerts and their review, silences and alert rules; the Alertmanager webhook
receiver, so Prometheus' alerts join the same review flow; labels sent back for predictions. Writes
honour Idempotency-Key (core.idempotency) and refuse unknown fields (core.api.Closed), except
Alertmanager's payload: its format is Alertmanager's, which adds fields from one release to the next."""

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import blank_refused, parse_at, validated
from core.exceptions import BadRequest
from core.idempotency import IdempotentWrites
from core.roles import Permission, actor_of, role_check, role_check_somewhere
from serving.signal_catalogue import Source

from .. import alert_evaluation, configuration, ground_truth, selectors
from ..alert_review import alert_review
from .serializers import (
    AlertDetailOutput,
    AlertmanagerPayload,
    AlertRuleInput,
    AlertRuleOutput,
    AlertRulesOutput,
    AlertsOutput,
    DetectorAccuracyOutput,
    FeedbackBulkInput,
    FeedbackBulkOutput,
    FeedbackInput,
    FeedbackOutput,
    ReviewInput,
    SilenceInput,
    SilenceOutput,
    SilencesOutput,
)


class AlertmanagerReceiverApi(IdempotentWrites, APIView):
    @extend_schema(
        summary="Alertmanager webhook receiver (webhook_config with an operator's token)",
        request={"application/json": AlertmanagerPayload},
        responses={200: None},
    )
    def post(self, request: Request) -> Response:
        role_check(user=request.user, permission=Permission.ALERTS_RECEIVE)  # before saying what is wrong
        payload = AlertmanagerPayload(data=request.data)
        payload.is_valid(raise_exception=True)
        touched = alert_evaluation.alertmanager_receive(
            alerts=payload.validated_data["alerts"], actor=actor_of(request)
        )
        return Response({"received": len(touched), "alerts": [alert.pk for alert in touched]})


# --- alerts, silences and alert rules ------------------------------------------------------------


def _state_filter(request: Request) -> bool:
    state = request.query_params.get("state", "open")
    if state not in ("open", "all"):
        raise BadRequest("state is open or all", code="invalid_state")
    return state == "open"


class AlertListApi(APIView):
    @extend_schema(
        operation_id="alerts_list",
        summary="Alerts, newest first (open ones by default), each with the silence muting it",
        parameters=[
            OpenApiParameter(
                "state", {"type": "string", "enum": ["open", "all"]}, description="default open"
            ),
            OpenApiParameter("model", {"type": "string"}, description="only this model's"),
        ],
        responses={200: AlertsOutput},
    )
    def get(self, request: Request) -> Response:
        found = selectors.alert_list(
            open_only=_state_filter(request), model=request.query_params.get("model") or None
        )
        return Response(AlertsOutput({"alerts": found}).data)


class AlertDetailApi(APIView):
    @extend_schema(
        operation_id="alert_get", summary="One alert with its trail", responses={200: AlertDetailOutput}
    )
    def get(self, request: Request, alert_id: int) -> Response:
        alert = selectors.alert_get(alert_id=alert_id)
        muting = selectors.silences_matching(alert)
        alert.silenced_by = muting[0] if muting else None
        return Response(AlertDetailOutput(alert).data)


class AlertReviewApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="alert_review",
        summary="Acknowledge, snooze, assign, comment on, resolve or re-baseline an alert",
        request={"application/json": ReviewInput},
        responses={200: AlertDetailOutput},
    )
    def post(self, request: Request, alert_id: int) -> Response:
        alert_review(alert_id=alert_id, actor=actor_of(request), **validated(ReviewInput, request.data))
        return AlertDetailApi().get(request, alert_id)


class SilenceListApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="silences_list",
        summary="Silences (active and pending by default; state=all adds ended ones)",
        parameters=[OpenApiParameter("state", {"type": "string", "enum": ["open", "all"]})],
        responses={200: SilencesOutput},
    )
    def get(self, request: Request) -> Response:
        found = selectors.silence_list(include_expired=not _state_filter(request))
        return Response(SilencesOutput({"silences": found}).data)

    @extend_schema(
        operation_id="silence_create",
        summary="Silence the notifications of alerts matching the matchers until ends_at",
        request={"application/json": SilenceInput},
        responses={201: SilenceOutput},
    )
    def post(self, request: Request) -> Response:
        role_check_somewhere(user=request.user, permission=Permission.ALERT_SILENCE)
        silence = configuration.silence_create(
            actor=actor_of(request), **validated(SilenceInput, request.data)
        )
        return Response(SilenceOutput(silence).data, status=201)


class SilenceDetailApi(IdempotentWrites, APIView):
    @extend_schema(operation_id="silence_get", summary="One silence", responses={200: SilenceOutput})
    def get(self, request: Request, silence_id: int) -> Response:
        return Response(SilenceOutput(selectors.silence_get(silence_id=silence_id)).data)

    @extend_schema(
        operation_id="silence_expire",
        summary="Expire a silence now (it stays listed)",
        responses={200: SilenceOutput},
    )
    def delete(self, request: Request, silence_id: int) -> Response:
        silence = configuration.silence_expire(silence_id=silence_id, actor=actor_of(request))
        return Response(SilenceOutput(silence).data)


class AlertRuleListApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="alert_rules_list", summary="A model's alert rules", responses={200: AlertRulesOutput}
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(AlertRulesOutput({"rules": configuration.alert_rules(model_name=name)}).data)

    @extend_schema(
        operation_id="alert_rule_create",
        summary="Add an alert rule: drift of one signal of production against its baseline",
        request={"application/json": AlertRuleInput},
        responses={201: AlertRuleOutput},
    )
    def post(self, request: Request, name: str) -> Response:
        role_check(user=request.user, permission=Permission.MONITORING_CONFIGURE, model_name=name)
        rule = configuration.alert_rule_create(
            model_name=name, actor=actor_of(request), **validated(AlertRuleInput, request.data)
        )
        return Response(AlertRuleOutput(rule).data, status=201)


class AlertRuleDetailApi(IdempotentWrites, APIView):
    @extend_schema(operation_id="alert_rule_get", summary="One alert rule", responses={200: AlertRuleOutput})
    def get(self, request: Request, rule_id: int) -> Response:
        return Response(AlertRuleOutput(configuration.alert_rule_get(rule_id=rule_id)).data)

    @extend_schema(
        operation_id="alert_rule_update",
        summary="Change an alert rule (send the fields to change)",
        request={"application/json": AlertRuleInput},
        responses={200: AlertRuleOutput},
    )
    def patch(self, request: Request, rule_id: int) -> Response:
        role_check_somewhere(user=request.user, permission=Permission.MONITORING_CONFIGURE)
        rule = configuration.alert_rule_update(
            rule_id=rule_id, actor=actor_of(request), **validated(AlertRuleInput, request.data, partial=True)
        )
        return Response(AlertRuleOutput(rule).data)

    @extend_schema(
        operation_id="alert_rule_delete",
        summary="Delete an alert rule (its alerts stay)",
        responses={204: None},
    )
    def delete(self, request: Request, rule_id: int) -> Response:
        configuration.alert_rule_delete(rule_id=rule_id, actor=actor_of(request))
        return Response(status=204)


# --- ground truth ---------------------------------------------------------------------------------


class FeedbackApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="prediction_feedback",
        summary="Send the truth of one prediction (its prediction_id from the answer): a classifier's true "
        "label, or a detector's true boxes with the answer's detections and image",
        description="Taken up to FEEDBACK_MAX_DELAY_DAYS after the prediction (422 feedback_too_late after). "
        "Sending another label later replaces the first (the first is kept in the record). A detector's "
        "detections and image must be the answer's as given (the prediction id vouches for them; 400 "
        "answer_mismatch otherwise); truth [] means no object.",
        request={"application/json": FeedbackInput},
        responses={200: FeedbackOutput},
    )
    def post(self, request: Request, prediction_id: str) -> Response:
        role_check_somewhere(user=request.user, permission=Permission.FEEDBACK_SUBMIT)
        data = validated(FeedbackInput, request.data)
        if "label" in data:
            feedback, status = ground_truth.feedback_record(
                prediction_id=prediction_id, label=data["label"], actor=actor_of(request)
            )
            counted = feedback.source == Source.LIVE
            return Response(FeedbackOutput({**vars(feedback), "status": status, "counted": counted}).data)
        found = ground_truth.box_feedback_record(prediction_id=prediction_id, actor=actor_of(request), **data)
        stored = found.feedback
        body = {
            **vars(stored), "status": found.status, "counted": stored.source == Source.LIVE,
            "predicted_label": found.predicted_label, "true_label": found.true_label, "correct": found.correct,
            "matched": found.matched, "predicted_boxes": len(stored.predicted), "true_boxes": len(stored.truth),
            "precision": found.precision, "recall": found.recall,
        }  # fmt: skip
        return Response(FeedbackOutput(body).data)


class FeedbackBulkApi(IdempotentWrites, APIView):
    @extend_schema(
        operation_id="prediction_feedback_bulk",
        summary="Send many truths at once (up to 1000 labels or detectors' true boxes); each item answered "
        "on its own",
        request={"application/json": FeedbackBulkInput},
        responses={200: FeedbackBulkOutput},
    )
    def post(self, request: Request) -> Response:
        role_check_somewhere(user=request.user, permission=Permission.FEEDBACK_SUBMIT)
        items = validated(FeedbackBulkInput, request.data)["items"]
        results = ground_truth.feedback_bulk(items=items, actor=actor_of(request))
        refused = sum(1 for r in results if r["status"] == "refused")
        body = {"recorded": sum(1 for r in results if r["status"] in ("recorded", "replaced")),
                "refused": refused, "results": results}  # fmt: skip
        return Response(FeedbackBulkOutput(body).data)


class DetectorAccuracyApi(APIView):
    @extend_schema(
        operation_id="detector_accuracy",
        summary="A detector's scores against the true boxes sent back, per version and time bucket",
        description="Precision and recall at IoU 0.5 of the boxes answered at the version's default cut "
        "(COCO's matching rule), and mAP@0.5 and mAP@0.5:0.95 by pycocotools, over the live predictions "
        "labelled in [from, to] (by when they were predicted; default: the last 24 hours) in `buckets` "
        "buckets. A bucket with fewer than min_images labelled images is not scored, and says so.",
        parameters=[
            OpenApiParameter(
                "from", {"type": "string", "format": "date-time"}, description="default: to − 24 h"
            ),
            OpenApiParameter("to", {"type": "string", "format": "date-time"}, description="default: now"),
            OpenApiParameter("buckets", {"type": "integer", "minimum": 1, "maximum": 200}, description="24"),
        ],
        responses={200: DetectorAccuracyOutput},
    )
    def get(self, request: Request, name: str) -> Response:
        blank_refused(request.query_params, "from", "to", "buckets")
        until = parse_at(request.query_params["to"]) if request.query_params.get("to") else timezone.now()
        raw = request.query_params.get("from")
        since = parse_at(raw) if raw else until - timedelta(hours=24)
        if since >= until:
            raise BadRequest("from must be before to", code="invalid_time")
        buckets = request.query_params.get("buckets", "24")
        if not buckets.isdigit() or not 1 <= int(buckets) <= 200:
            raise BadRequest("buckets must be a whole number from 1 to 200", code="invalid_limit")
        found = selectors.detector_accuracy(name=name, since=since, until=until, buckets=int(buckets))

        def scores(point: ground_truth.BoxPoint) -> dict[str, Any]:
            return {
                "start": point.start, "end": point.end, "images": point.images, "true_boxes": point.true_boxes,
                "predicted_boxes": point.predicted_boxes, "enough": point.enough, "note": point.note,
                **{k: point.score(k) for k in ("precision", "recall", "map50", "map50_95")},
            }  # fmt: skip

        body = {
            "model": name, "since": since, "until": until, "min_images": ground_truth.MIN_IMAGES,
            "matching": ground_truth.DETECTOR_MATCHING, "estimate": ground_truth.NO_DETECTOR_ESTIMATE,
            "versions": [
                {"version": v.version, "total": scores(v.total), "buckets": [scores(p) for p in v.points]}
                for v in found
            ],
        }  # fmt: skip
        return Response(DetectorAccuracyOutput(body).data)
