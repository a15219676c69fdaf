"""Serving's input and output shapes, shared by its pages and the API: a model's sample store and its
shadow traffic."""

from typing import Any

from rest_framework import serializers

from core.api import Closed, Flag, Whole


class SamplePolicyInput(Closed):
    enabled = Flag()
    max_count = Whole(required=False, min_value=1, max_value=100_000, help_text="images kept at most")
    max_bytes = Whole(
        required=False, min_value=1024 * 1024, max_value=100 * 1024**3, help_text="bytes kept at most"
    )
    retention_days = Whole(required=False, min_value=1, max_value=3650, help_text="days an image is kept")


class SampleStoreOutput(serializers.Serializer):
    """serving.sample_store.StoreSummary."""

    model = serializers.CharField(source="policy.model")
    enabled = serializers.BooleanField(source="policy.enabled")
    max_count = serializers.IntegerField(source="policy.max_count")
    max_bytes = serializers.IntegerField(source="policy.max_bytes")
    retention_days = serializers.IntegerField(source="policy.retention_days")
    seen = serializers.IntegerField(source="policy.seen", help_text="live production inputs offered")
    repeats_skipped = serializers.IntegerField(
        source="policy.repeats_skipped",
        help_text="live production answers from the prediction cache not offered (an input seen already)",
    )
    count = serializers.IntegerField(help_text="images held")
    bytes = serializers.IntegerField(help_text="bytes held")
    oldest = serializers.DateTimeField(allow_null=True)
    dropped = serializers.IntegerField(help_text="offered while this process's queue was full")


class PurgedOutput(serializers.Serializer):
    purged = serializers.IntegerField()


class ShadowInput(Closed):
    version = Whole(min_value=1, max_value=999_999_999, help_text="the staging version")
    share = Whole(min_value=1, max_value=100, help_text="percent of live production requests mirrored")


class ShadowStopOutput(serializers.Serializer):
    """serving.models.ShadowEvent: how the last shadow ended."""

    version = serializers.IntegerField()
    share = serializers.IntegerField()
    production_version = serializers.IntegerField(
        allow_null=True, help_text="the version it was compared with"
    )
    reason = serializers.CharField(
        help_text="e.g. 'stopped: v2 left staging for production (rolled back by …)'"
    )
    by = serializers.CharField(
        source="actor.username", allow_null=True, default=None, help_text="None: the system"
    )
    at = serializers.DateTimeField(source="created_at")


class ShadowOutput(serializers.Serializer):
    """serving.shadow.Agreement: the running shadow and production × shadow answers."""

    running = serializers.SerializerMethodField()
    share = serializers.SerializerMethodField()
    production_version = serializers.IntegerField(allow_null=True)
    shadow_version = serializers.IntegerField(allow_null=True)
    total = serializers.IntegerField(help_text="mirrored requests answered")
    agree = serializers.IntegerField()
    failed = serializers.IntegerField(source="errors", help_text="mirrored requests the shadow failed on")
    rate = serializers.FloatField(allow_null=True, help_text="top-1 agreement")
    labels_production = serializers.ListField(child=serializers.CharField(), help_text="the matrix's rows")
    labels_shadow = serializers.ListField(child=serializers.CharField(), help_text="the matrix's columns")
    matrix = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    dropped = serializers.IntegerField(help_text="mirrored requests this process dropped (queue full)")
    repeats_skipped = serializers.IntegerField(
        help_text="requests it would have mirrored that were repeats answered from the prediction cache"
    )
    stopped = ShadowStopOutput(allow_null=True, help_text="when none runs: how the last shadow ended")

    def get_running(self, obj: Any) -> bool:
        return obj.config is not None

    def get_share(self, obj: Any) -> int | None:
        return obj.config.share if obj.config else None
