"""API shapes: inputs are validated here, outputs built from selectors' objects."""

from rest_framework import serializers

from registry.choices import Stage


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class PromoteInput(ReasonInput):
    to = serializers.ChoiceField(choices=Stage.choices)
    weight = serializers.IntegerField(required=False)
    override = serializers.BooleanField(required=False, default=False)


class ProductionRequestInput(ReasonInput):
    version = serializers.IntegerField(min_value=1)
    override = serializers.BooleanField(required=False, default=False)


class WeightInput(ReasonInput):
    weight = serializers.IntegerField()


class RegisterInput(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="an .onnx file (multipart)")
    source_uri = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    metadata = serializers.JSONField(
        required=False,
        default=dict,
        help_text="input_size [h, w], layout NCHW|NHWC, color_order RGB|BGR, resize, scale, mean, std, labels",
    )
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    tags = serializers.DictField(child=serializers.CharField(max_length=5000), required=False, default=dict)
    params = serializers.DictField(child=serializers.CharField(max_length=6000), required=False, default=dict)
    dataset_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    dataset_digest = serializers.CharField(required=False, allow_blank=True, default="", max_length=36)


class EventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="model.name")
    action = serializers.CharField()
    stage = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    from_version = serializers.IntegerField(allow_null=True)
    to_version = serializers.IntegerField(allow_null=True)
    actor = serializers.SerializerMethodField()
    reason = serializers.CharField()
    override = serializers.BooleanField()
    request_id = serializers.IntegerField(allow_null=True)
    details = serializers.JSONField()
    created_at = serializers.DateTimeField()

    def get_actor(self, event) -> str | None:
        return event.actor.get_username() if event.actor else None


class ProductionRequestOutput(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    requested_by = serializers.CharField(source="requested_by.username")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


def version_dict(row) -> dict:
    info, run = row.info, row.run
    return {
        "version": info.version,
        "stages": list(row.stages),
        "mlflow_aliases": list(info.aliases),
        "status": info.status,
        "source": info.source,
        "run_id": info.run_id,
        "source_run_id": info.source_run_id,
        "registered_by": info.registered_by,
        "created_at": info.created.isoformat() if info.created else None,
        "description": info.description,
        "tags": info.user_tags,
        "metadata": {k[3:]: v for k, v in info.tags.items() if k.startswith("cp.")},
        "run": None
        if run is None
        else {
            "run_id": run.run_id,
            "name": run.run_name,
            "params": run.params,
            "metrics": run.metrics,
            "datasets": [{"name": n, "digest": d} for n, d in run.datasets],
        },
    }


def model_dict(model, *, last_event=None, pending=None, rollback_to=None) -> dict:
    return {
        "name": model.name,
        "production": model.production_version,
        "canary": model.canary_version,
        "canary_weight": model.canary_weight,
        "staging": model.staging_version,
        "rollback_target": rollback_to,
        "pending_production_request": ProductionRequestOutput(pending).data if pending else None,
        "last_event": EventOutput(last_event).data if last_event else None,
        "updated_at": model.updated_at.isoformat(),
    }


# --- Response shapes, for the OpenAPI schema (the views build the same dicts above) -------------


class RunOutput(serializers.Serializer):
    run_id = serializers.CharField()
    name = serializers.CharField()
    params = serializers.DictField(child=serializers.CharField())
    metrics = serializers.DictField(child=serializers.FloatField())
    datasets = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))


class VersionOutput(serializers.Serializer):
    version = serializers.IntegerField()
    stages = serializers.ListField(child=serializers.ChoiceField(choices=Stage.choices))
    mlflow_aliases = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField()
    source = serializers.CharField()
    run_id = serializers.CharField(allow_null=True)
    source_run_id = serializers.CharField()
    registered_by = serializers.CharField()
    created_at = serializers.DateTimeField(allow_null=True)
    description = serializers.CharField()
    tags = serializers.DictField(child=serializers.CharField())
    metadata = serializers.DictField(child=serializers.CharField(), help_text="preprocessing metadata")
    run = RunOutput(allow_null=True)


class CheckOutput(serializers.Serializer):
    input_shape = serializers.ListField(child=serializers.IntegerField())
    output_shape = serializers.ListField(child=serializers.IntegerField())
    opset = serializers.IntegerField()
    test_inference_ms = serializers.FloatField()


class RegisteredOutput(VersionOutput):
    check = CheckOutput()
    event = EventOutput()


class ModelOutput(serializers.Serializer):
    name = serializers.CharField()
    production = serializers.IntegerField(allow_null=True)
    canary = serializers.IntegerField(allow_null=True)
    canary_weight = serializers.IntegerField()
    staging = serializers.IntegerField(allow_null=True)
    rollback_target = serializers.IntegerField(allow_null=True)
    pending_production_request = ProductionRequestOutput(allow_null=True)
    last_event = EventOutput(allow_null=True)
    updated_at = serializers.DateTimeField()


class ModelDetailOutput(ModelOutput):
    versions = VersionOutput(many=True)


class ModelListOutput(serializers.Serializer):
    models = ModelOutput(many=True)


class VersionListOutput(serializers.Serializer):
    versions = VersionOutput(many=True)


class EventEnvelope(serializers.Serializer):
    event = EventOutput()


class RequestEnvelope(serializers.Serializer):
    production_request = ProductionRequestOutput()


class PromoteOutput(serializers.Serializer):
    event = EventOutput(required=False, help_text="for staging and canary")
    production_request = ProductionRequestOutput(required=False, help_text="for production")


class HistoryOutput(serializers.Serializer):
    events = EventOutput(many=True)


class ProductionAtOutput(serializers.Serializer):
    model = serializers.CharField()
    at = serializers.DateTimeField()
    version = serializers.IntegerField(allow_null=True)
    since_event = EventOutput(allow_null=True)


class MeOutput(serializers.Serializer):
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorOutput(serializers.Serializer):
    error = ErrorDetail()
