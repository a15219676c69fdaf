"""Releases' input and output shapes, shared by its pages and the API: background jobs (pre-flight
replays, INT8 builds) and canary plans."""

from typing import Any

from rest_framework import serializers

from core.api import Closed, Flag, Whole


class PreflightInput(Closed):
    limit = Whole(
        required=False, min_value=1, help_text="stored inputs to replay (default PREFLIGHT_SAMPLES, 50)"
    )


class BackgroundJobOutput(serializers.Serializer):
    """releases.models.BackgroundJob: a job's identity, state, progress (done of total) and outcome."""

    id = serializers.IntegerField()
    model = serializers.CharField()
    status = serializers.CharField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    result = serializers.JSONField()
    error = serializers.CharField()
    started_by = serializers.CharField(source="started_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class PreflightOutput(BackgroundJobOutput):
    version = serializers.IntegerField()
    production_version = serializers.IntegerField()
    result = serializers.JSONField(
        help_text="agreement, changes (production → candidate label counts), confidence_shift, latency_ms, "
        "latency_ratio, errors, disagreements (sample ids)"
    )


class QuantizationOutput(BackgroundJobOutput):
    version = serializers.IntegerField(help_text="the source version")
    step = serializers.CharField(help_text="what the job is doing; progress is done of total")
    new_version = serializers.IntegerField(allow_null=True, help_text="the INT8 version, once registered")
    result = serializers.JSONField(
        help_text="method, calibration_images, images, agreement, confident_images, agreement_confident, "
        "latency_ms (source, int8), latency_ratio, bytes, sha256"
    )


class CanaryPlanInput(Closed):
    steps = serializers.ListField(
        child=Whole(min_value=1, max_value=100), required=False, min_length=1, max_length=20,
        help_text="rising canary weights in percent; 100 asks for production approval",
    )  # fmt: skip
    interval_seconds = Whole(required=False, min_value=10, max_value=86400)
    min_samples = Whole(required=False, min_value=1, max_value=10_000_000)
    failure_limit = Whole(required=False, min_value=1, max_value=20)
    enabled = Flag(required=False)

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "dict"):  # a form: steps as "5, 25, 50, 100", an unticked box absent
            raw = data.get("steps", "")
            data = {**data.dict(), "enabled": data.get("enabled", "off")}
            parts = [p.strip() for p in raw.replace(",", " ").split()]
            if not all(p.isdigit() for p in parts):
                raise serializers.ValidationError({"steps": ["whole numbers separated by commas"]})
            data["steps"] = [int(p) for p in parts]
        return super().to_internal_value(data)


class CanaryPlanOutput(serializers.Serializer):
    model = serializers.CharField()
    steps = serializers.ListField(child=serializers.IntegerField())
    interval_seconds = serializers.IntegerField()
    min_samples = serializers.IntegerField()
    failure_limit = serializers.IntegerField()
    enabled = serializers.BooleanField()
