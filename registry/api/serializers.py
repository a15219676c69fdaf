"""The registry's input and output shapes, shared by the API and the pages: inputs are parsed here,
answers rendered here from the selectors' objects (the same classes describe them in the schema)."""

import json
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html

from core.api import Closed, Flag, Text, Whole
from core.converters import MAX_ID
from core.exceptions import PreconditionRequired
from registry.choices import ConfigAction, ConfigKind, Stage
from registry.services import Expected

# --- inputs: the workflow actions (registry.actions) and registration ---------------------------


class JSONObjectField(serializers.DictField):
    """A JSON object — in a JSON body as itself, in a multipart form as one field holding its JSON text
    (or as `name.key` fields). Anything else is refused, never dropped."""

    default_error_messages = {
        "not_json": "not valid JSON ({error})",
        "not_an_object": "must be a JSON object, got {kind}",
    }

    def get_value(self, dictionary: Any) -> Any:
        if html.is_html_input(dictionary) and self.field_name in dictionary:
            return dictionary.get(self.field_name)  # the object's JSON text
        return super().get_value(dictionary)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                self.fail("not_json", error=exc.msg)
        if not isinstance(data, dict):
            self.fail("not_an_object", kind=type(data).__name__)
        return super().to_internal_value(data)


MAX_MAP_ENTRIES = 100  # tags or params of one registration (MLflow's batch limit)
MAX_MAP_KEY_LENGTH = 250  # MLflow's limit on a tag or param name


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": MAX_MAP_ENTRIES,
        "description": f"names of 1–{MAX_MAP_KEY_LENGTH} characters",
        "additionalProperties": {"type": "string", "maxLength": 5000},
    }
)
class TextMapField(JSONObjectField):
    """name → text, e.g. MLflow tags and params: at most MAX_MAP_ENTRIES names of at most
    MAX_MAP_KEY_LENGTH characters."""

    default_error_messages = {
        "too_many": f"at most {MAX_MAP_ENTRIES} entries",
        "bad_key": f"names must be 1–{MAX_MAP_KEY_LENGTH} characters long",
    }

    def __init__(self, *, max_length: int, **kwargs: Any):
        super().__init__(child=Text(max_length=max_length, allow_blank=True), **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        parsed = super().to_internal_value(data)
        if len(parsed) > MAX_MAP_ENTRIES:
            self.fail("too_many")
        if any(not 1 <= len(key) <= MAX_MAP_KEY_LENGTH for key in parsed):
            self.fail("bad_key")
        return parsed


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(JSONObjectField):
    def __init__(self, **kwargs: Any):
        super().__init__(child=serializers.JSONField(), **kwargs)


def _expected_version(stage: str) -> Whole:
    return Whole(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        help_text=f"the {stage} version you saw (null: none)",
    )


class WorkflowInput(Closed):
    """What every workflow write names: the state it was decided on — the model's revision (the ETag
    every read of the model returns, or If-Match) and/or the versions seen in stages. A write whose
    expectation no longer holds is refused with 409 stale_state and the current state."""

    reason = Text(required=False, allow_blank=True, default="", max_length=5000)
    expected_revision = Whole(
        min_value=0, max_value=2**31 - 1, required=False, help_text="the model's revision you saw"
    )
    expected_production = _expected_version("production")
    expected_canary = _expected_version("canary")
    expected_staging = _expected_version("staging")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        stages = {
            stage: attrs.pop(f"expected_{stage}") for stage in Stage.values if f"expected_{stage}" in attrs
        }
        attrs["expected"] = Expected(revision=attrs.pop("expected_revision", None), stages=stages)
        if not attrs["expected"]:
            raise PreconditionRequired(
                "name the state this decision was made on: send If-Match with the model's ETag, or "
                "expected_revision / expected_production / expected_canary / expected_staging",
            )
        return attrs


class ReasonInput(WorkflowInput):
    pass


class RequiredReasonInput(WorkflowInput):
    """Decisions that stop someone else's work (reject, abort) say why."""

    reason = Text(max_length=5000, help_text="why: the requester and the history read it")

    def validate_reason(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("a reason is required")
        return value


class VersionInput(WorkflowInput):
    version = Whole(min_value=1, max_value=MAX_ID)


class VersionReasonInput(VersionInput):
    pass


class VersionRequiredReasonInput(RequiredReasonInput):
    """Archiving a version says why (the history and the version's page show it)."""

    version = Whole(min_value=1, max_value=MAX_ID)


def _weight(**kwargs: Any) -> Whole:
    return Whole(min_value=settings.CANARY_WEIGHT_MIN, max_value=settings.CANARY_WEIGHT_MAX, **kwargs)


class CanaryStartInput(VersionInput):
    weight = _weight(
        required=False, allow_null=True, default=None, help_text="percent of traffic (default: the minimum)"
    )
    override = Flag(required=False, default=False)


class WeightInput(WorkflowInput):
    weight = _weight(help_text="percent of traffic")


class ProductionRequestInput(VersionInput):
    override = Flag(required=False, default=False)


class PromoteTarget(serializers.Serializer):
    """The one field the promote verb reads itself; the rest is its action's input (closed there)."""

    to = serializers.ChoiceField(choices=Stage.choices)


class PromoteInput(WorkflowInput, PromoteTarget):
    """CI's one verb: the version comes from the URL, `to` names the stage (and so the action, whose
    input this is: a canary's weight, an override)."""

    weight = _weight(required=False, help_text="canary: percent of traffic")
    override = Flag(required=False, default=False)


class RegisterInput(Closed):
    file = serializers.FileField(required=False, help_text="an .onnx file (multipart)")
    source_uri = Text(required=False, allow_blank=True, default="", max_length=2000)
    metadata = MetadataField(
        required=False,
        default=dict,
        help_text="preprocessing metadata (docs/api.md lists every key); in a multipart form, its JSON text",
    )
    description = Text(required=False, allow_blank=True, default="", max_length=5000)
    tags = TextMapField(max_length=5000, required=False, default=dict, help_text="MLflow version tags")
    params = TextMapField(max_length=6000, required=False, default=dict, help_text="MLflow run params")
    dataset_name = Text(required=False, allow_blank=True, default="", max_length=500)
    dataset_digest = Text(required=False, allow_blank=True, default="", max_length=36)
    team = Text(
        required=False,
        allow_blank=True,
        default="",
        max_length=100,
        help_text="a new model's team (needed when you register for several teams); a known model keeps its own",
    )


# --- outputs --------------------------------------------------------------------------------------


class EventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="model.name")
    action = serializers.CharField()
    stage = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    from_version = serializers.IntegerField(allow_null=True)
    to_version = serializers.IntegerField(allow_null=True)
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    reason = serializers.CharField()
    override = serializers.BooleanField()
    request_id = serializers.IntegerField(allow_null=True)
    details = serializers.JSONField()
    created_at = serializers.DateTimeField()


class ProductionRequestOutput(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    status = serializers.CharField()
    requested_by = serializers.CharField(source="requested_by.username")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class DatasetOutput(serializers.Serializer):
    name = serializers.CharField()
    digest = serializers.CharField()


class RunOutput(serializers.Serializer):
    run_id = serializers.CharField()
    name = serializers.CharField(source="run_name")
    params = serializers.DictField(child=serializers.CharField())
    metrics = serializers.DictField(child=serializers.FloatField())
    datasets = DatasetOutput(many=True)


class ArchivedOutput(serializers.Serializer):
    """The history event that archived a version."""

    reason = serializers.CharField()
    by = serializers.CharField(source="actor.username", allow_null=True)
    at = serializers.DateTimeField(source="created_at")


class VersionOutput(serializers.Serializer):
    """A selectors.VersionRow: the MLflow version, its run, and the stages our workflow gives it."""

    version = serializers.IntegerField(source="info.version")
    stages = serializers.ListField(child=serializers.ChoiceField(choices=Stage.choices))
    mlflow_aliases = serializers.ListField(child=serializers.CharField(), source="info.aliases")
    status = serializers.CharField(source="info.status")
    source = serializers.CharField(source="info.source")  # type: ignore[assignment]  # the field is named like Field.source
    run_id = serializers.CharField(source="info.run_id", allow_null=True)
    source_run_id = serializers.CharField(source="info.source_run_id")
    registered_by = serializers.CharField(source="info.registered_by")
    created_at = serializers.DateTimeField(source="info.created", allow_null=True)
    description = serializers.CharField(source="info.description")
    tags = serializers.DictField(child=serializers.CharField(), source="info.user_tags")
    metadata = serializers.DictField(
        child=serializers.CharField(), source="info.contract_tags", help_text="preprocessing metadata"
    )
    run = RunOutput(allow_null=True)
    archived = ArchivedOutput(
        allow_null=True, help_text="null, or who archived it, when and why (hidden; no stage may take it)"
    )


class CheckOutput(serializers.Serializer):
    input_shape = serializers.ListField(child=serializers.IntegerField())
    output_shape = serializers.ListField(child=serializers.IntegerField())
    opset = serializers.IntegerField()
    test_inference_ms = serializers.FloatField()


class RegisteredOutput(VersionOutput):
    check = CheckOutput()
    event = EventOutput()
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="registered, but look: e.g. the same file as an earlier version",
    )


class LastChangeOutput(serializers.Serializer):
    action = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    actor = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField()


class StateOutput(serializers.Serializer):
    """selectors.model_state_snapshot: what a write names as its expectation, and what a stale one is
    told (in error.current)."""

    revision = serializers.IntegerField()
    etag = serializers.CharField()
    production = serializers.IntegerField(allow_null=True)
    canary = serializers.IntegerField(allow_null=True)
    canary_weight = serializers.IntegerField()
    canary_effective_weight = serializers.IntegerField(
        help_text="percent of traffic the canary answers: 100 while nothing is in production"
    )
    canary_note = serializers.CharField(allow_null=True, help_text="why the two differ")
    staging = serializers.IntegerField(allow_null=True)
    pending_request = serializers.IntegerField(allow_null=True, help_text="the version waiting for approval")
    last_change = LastChangeOutput(allow_null=True)


class ModelOutput(serializers.Serializer):
    """A selectors.ModelSummary."""

    name = serializers.CharField(source="model.name")
    team = serializers.CharField(
        allow_null=True, help_text="the team that owns the model (None: roles for all models govern it)"
    )
    production = serializers.IntegerField(source="model.production_version", allow_null=True)
    canary = serializers.IntegerField(source="model.canary_version", allow_null=True)
    canary_weight = serializers.IntegerField(source="model.canary_weight")
    canary_effective_weight = serializers.IntegerField(
        source="model.canary_effective_weight",
        help_text="percent of traffic the canary answers: its weight, or 100 while nothing is in production",
    )
    canary_note = serializers.SerializerMethodField(
        help_text="why the canary's share differs from its weight"
    )
    staging = serializers.IntegerField(source="model.staging_version", allow_null=True)
    revision = serializers.IntegerField(source="model.revision")
    etag = serializers.CharField(source="model.etag", help_text="send as If-Match with a workflow write")
    rollback_target = serializers.IntegerField(source="rollback_to", allow_null=True)
    pending_production_request = ProductionRequestOutput(source="pending", allow_null=True)
    last_event = EventOutput(allow_null=True)
    updated_at = serializers.DateTimeField(source="model.updated_at")

    def get_canary_note(self, obj: Any) -> str | None:
        return obj.model.canary_note or None


class ModelDetailOutput(ModelOutput):
    versions = VersionOutput(many=True)


class ModelListOutput(serializers.Serializer):
    models = ModelOutput(many=True)


class VersionListOutput(serializers.Serializer):
    versions = VersionOutput(many=True)


class EventEnvelope(serializers.Serializer):
    """A workflow action's answer: the history event it wrote, and the production request it opened or
    decided, if any."""

    event = EventOutput()
    production_request = ProductionRequestOutput(source="event.request", required=False, allow_null=True)
    state = StateOutput(help_text="the model's state after the action: send its etag with the next write")


class HistoryOutput(serializers.Serializer):
    events = EventOutput(many=True)


class ConfigChangeOutput(serializers.Serializer):
    """registry.models.ConfigChange: one change of what people configure about a model."""

    id = serializers.IntegerField()
    model = serializers.CharField(source="model_name", help_text="empty: a silence of every model")
    kind = serializers.ChoiceField(choices=ConfigKind.choices)
    subject = serializers.CharField(
        help_text="which one (a rule's or a silence's id); empty: the model's own"
    )
    action = serializers.ChoiceField(choices=ConfigAction.choices)
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    at = serializers.DateTimeField(source="created_at")
    before = serializers.JSONField(allow_null=True, help_text="its fields before (null: it did not exist)")
    after = serializers.JSONField(allow_null=True, help_text="its fields after (null: it no longer exists)")
    changed = serializers.SerializerMethodField(help_text="the fields that differ")

    def get_changed(self, obj: Any) -> list[str]:
        return [field for field, _, _ in obj.changes]


class ConfigHistoryOutput(serializers.Serializer):
    changes = ConfigChangeOutput(many=True)


class ProductionAtOutput(serializers.Serializer):
    model = serializers.CharField(source="model.name")
    at = serializers.DateTimeField()
    version = serializers.IntegerField(allow_null=True)
    since_event = EventOutput(source="event", allow_null=True)


class MeOutput(serializers.Serializer):
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField(), help_text="roles for all models")
    teams = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="team → the roles held for that team's models",
    )


class ModelTeamInput(Closed):
    team = serializers.CharField(allow_null=True, help_text="a team's slug; null: the model has no team")


class DifferenceOutput(serializers.Serializer):
    field = serializers.CharField()
    candidate = serializers.CharField()
    production = serializers.CharField()
    flag = serializers.ChoiceField(choices=["red", "amber", "ok"])
    why = serializers.CharField()


class FindingOutput(serializers.Serializer):
    kind = serializers.CharField()
    title = serializers.CharField()
    flag = serializers.ChoiceField(choices=["red", "amber", "ok"])
    summary = serializers.CharField()
    numbers = serializers.JSONField()


class GatesOutput(serializers.Serializer):
    """registry.evidence.Gates: whether the production gates judge this version."""

    applied = serializers.BooleanField()
    reason = serializers.CharField(help_text="why they do not apply ('' when they do)")
    names = serializers.ListField(child=serializers.CharField(), help_text="the gates in force")
    failures = serializers.ListField(child=serializers.CharField(), help_text="what stops a request now")


class EvidenceOutput(serializers.Serializer):
    """registry.evidence.Evidence: what an approver decides on."""

    model = serializers.CharField()
    version = serializers.IntegerField()
    against = serializers.IntegerField(allow_null=True, help_text="the production version compared with")
    red_flags = serializers.ListField(child=serializers.CharField())
    differences = DifferenceOutput(many=True, help_text="the preprocessing contract against production's")
    findings = FindingOutput(many=True, help_text="canary analysis and other evidence")
    problems = serializers.ListField(child=serializers.CharField(), help_text="what could not be read")
    gates = GatesOutput(help_text="the production gates: applied or not (and why), what they find")


class VersionEditInput(Closed):
    description = Text(required=False, allow_blank=True, max_length=5000, help_text="the new description")
    tags = serializers.DictField(
        child=Text(allow_null=True, allow_blank=True, max_length=5000),
        required=False,
        help_text="tags to set; a null value removes the tag (the cp.* tags are the control plane's)",
    )


class VersionEditOutput(serializers.Serializer):
    description = serializers.CharField()
    tags = serializers.DictField(
        child=serializers.CharField(), help_text="the version's own tags after the change"
    )
