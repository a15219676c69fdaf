"""What an approver decides on: the candidate's preprocessing contract against production's, with red
flags, and what other apps know of it (monitoring adds its canary analysis through `evidence_provider`;
the registry does not import monitoring). One home for the pages and the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from core.exceptions import ApplicationError
from modelspec.detection import DetectorOutputs
from modelspec.tasks import contract_fields

from . import mlflow_gateway
from .mlflow_gateway import VersionInfo  # what providers are handed (the apps above read it from here)
from .models import ModelState

RED, AMBER, OK = "red", "amber", "ok"


@dataclass(frozen=True)
class Difference:
    field: str
    candidate: str
    production: str
    flag: str  # RED: it will answer wrongly; AMBER: check it is meant; OK: the same
    why: str = ""


@dataclass(frozen=True)
class Finding:
    """One piece of evidence from elsewhere (the canary analysis, a pre-flight): a verdict, a line a
    person reads, the numbers behind it."""

    kind: str
    title: str
    flag: str
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evidence:
    model: str
    version: int
    against: int | None  # the production version it is compared with
    differences: list[Difference]
    findings: list[Finding]
    problems: list[str]  # what could not be read (MLflow down, no metadata)
    gates: Gates | None = None  # whether the production gates judge this version, and what stops it

    @property
    def red_flags(self) -> list[str]:
        lines = [f"{d.field}: {d.why}" for d in self.differences if d.flag == RED]
        return lines + [f"{f.title}: {f.summary}" for f in self.findings if f.flag == RED]


# A provider is handed the version as the evidence already read it from MLflow (its tags, so a provider
# that only needs those asks MLflow nothing more), or None when the evidence did not read it (no production
# version to compare with, or MLflow failed).
Provider = Callable[[ModelState, int, VersionInfo | None], list[Finding]]
_providers: list[Provider] = []


def evidence_provider(provider: Provider) -> Provider:
    """Add a source of findings (an app's ready() calls this)."""
    if provider not in _providers:
        _providers.append(provider)
    return provider


Gate = Callable[[ModelState, int], list[str]]  # → why the version may not be requested yet (empty: it may)
_gates: dict[str, Gate] = {}


def promotion_gate(name: str, gate: Gate) -> None:
    """Add a production gate (an app's ready() calls this); settings.PROMOTION_GATES names those in force."""
    _gates[name] = gate


@dataclass(frozen=True)
class Gates:
    """The production gates for one version: whether they apply, why not, and what they find."""

    applied: bool
    reason: str  # why they do not apply ("" when they do)
    names: list[str]  # the gates in force (settings.PROMOTION_GATES)
    failures: list[str]


def gates_not_applied(model: ModelState) -> str:
    """Why the gates judge nothing for this model now ("" when they do). Every gate compares a candidate
    with production (the canary against it, the pre-flight replaying its inputs): a first production
    version has nothing to be compared with, and saying so is the approver's due."""
    if model.production_version is None:
        return (
            "no production version to compare against: the canary analysis and the pre-flight judge a "
            "candidate against production, so a first production version passes them unjudged"
        )
    return ""


def gate_check(*, model: ModelState, version: int) -> Gates:
    names = [name for name in settings.PROMOTION_GATES if name in _gates]
    reason = gates_not_applied(model)
    if reason:
        return Gates(False, reason, names, [])
    return Gates(True, "", names, [why for name in names for why in _gates[name](model, version)])


def gate_failures(*, model: ModelState, version: int) -> list[str]:
    """What stops a production request for `version`, by the gates settings.PROMOTION_GATES names."""
    return gate_check(model=model, version=version).failures


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _compare(name: str, ours: Any, theirs: Any, flag: str, why: str) -> Difference:
    same = ours == theirs
    return Difference(name, _text(ours), _text(theirs), OK if same else flag, "" if same else why)


def metadata_differences(candidate: dict[str, Any], production: dict[str, Any]) -> list[Difference]:
    """The contract, field by field: what would make the candidate answer wrongly on the same inputs. The
    rows every version has, then those either side's resize policy and task read (contract_fields: a
    detector has no output kind, a stretched input no crop ratio)."""
    read = contract_fields(candidate) | contract_fields(production)
    rows = [
        _compare(
            "task",
            candidate.get("task", "classification"),
            production.get("task", "classification"),
            RED,
            "the candidate does another task: its answers cannot stand in for production's",
        ),
        _compare(
            "input size",
            [candidate.get("input_height"), candidate.get("input_width")],
            [production.get("input_height"), production.get("input_width")],
            AMBER,
            "the model sees inputs at another size; check it was trained so",
        ),
        _compare("layout", candidate.get("layout"), production.get("layout"), RED, "tensor layout differs"),
        _compare(
            "normalization",
            [candidate.get("scale"), *candidate.get("mean", []), *candidate.get("std", [])],
            [production.get("scale"), *production.get("mean", []), *production.get("std", [])],
            RED,
            "scale, mean or std differ: unless the model was retrained with them, every input is "
            "shifted (the form's ImageNet defaults are a common slip)",
        ),
        _compare(
            "colour order",
            candidate.get("color_order"),
            production.get("color_order"),
            RED,
            "channels are swapped relative to production",
        ),
        _compare(
            "resize policy",
            candidate.get("resize"),
            production.get("resize"),
            AMBER,
            "inputs are resized, cropped or padded differently",
        ),
    ]
    rows += [
        row
        for name, compared in CONTRACT_ROWS.items()
        if name in read
        for row in compared(candidate, production)
    ]
    rows.append(_labels(list(candidate.get("labels", [])), list(production.get("labels", []))))
    return rows


def _labels(c_labels: list[str], p_labels: list[str]) -> Difference:
    if len(c_labels) != len(p_labels):
        why = (
            "the candidate has no labels: answers will read 'class 285'"
            if not c_labels
            else f"{len(c_labels)} labels against production's {len(p_labels)}"
        )
        return Difference("label count", str(len(c_labels)), str(len(p_labels)), RED, why)
    changed = [i for i, (a, b) in enumerate(zip(c_labels, p_labels, strict=True)) if a != b]
    return Difference(
        "labels",
        f"{len(c_labels)}, {len(changed)} renamed" if changed else str(len(c_labels)),
        str(len(p_labels)),
        AMBER if changed else OK,
        "renamed: "
        + ", ".join(f"{i}: {p_labels[i]!r} → {c_labels[i]!r}" for i in changed[:5])
        + (" …" if len(changed) > 5 else "")
        if changed
        else "",
    )


def _crop_ratio(candidate: dict[str, Any], production: dict[str, Any]) -> list[Difference]:
    return [
        _compare(
            "crop ratio",
            candidate.get("crop_ratio"),
            production.get("crop_ratio"),
            AMBER,
            "the centre crop keeps another share of the image",
        )
    ]


def _pad(candidate: dict[str, Any], production: dict[str, Any]) -> list[Difference]:
    return [
        _compare(
            "letterbox pad",
            candidate.get("pad"),
            production.get("pad"),
            AMBER,
            "the letterbox border has another pixel value: the model sees other edges; check it was trained so",
        )
    ]


def _output(candidate: dict[str, Any], production: dict[str, Any]) -> list[Difference]:
    return [
        _compare(
            "output kind",
            candidate.get("output"),
            production.get("output"),
            RED,
            "scores are read differently",
        )
    ]


# How a detector's outputs are read, and how its boxes are kept: the `detection` part of the metadata.
BOX_READING = ("format", "boxes_output", "scores_output", "classes_output", "box_format", "normalized")
BOX_KEEPING = ("score_threshold", "iou_threshold", "max_detections", "min_confidence")


def _detection(candidate: dict[str, Any], production: dict[str, Any]) -> list[Difference]:
    """How a detector's boxes are read and kept (the defaults where a side does not say)."""
    ours, theirs = (
        DetectorOutputs.parse(side.get("detection")).as_dict() for side in (candidate, production)
    )
    return [
        _compare(
            "box outputs",
            [ours[k] for k in BOX_READING],
            [theirs[k] for k in BOX_READING],
            RED,
            "boxes are read differently (format, output names, box layout or normalization)",
        ),
        _compare(
            "box thresholds",
            [ours[k] for k in BOX_KEEPING],
            [theirs[k] for k in BOX_KEEPING],
            AMBER,
            "boxes are suppressed or cut differently: counts and confidences shift even with the same model",
        ),
    ]


# The rows of the metadata fields only some versions read (modelspec.tasks.contract_fields), in the order
# shown: each compares its field when either side reads it. Every field a task or a resize policy reads
# has one (tests/registry/test_evidence.py holds it).
CONTRACT_ROWS: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[Difference]]] = {
    "crop_ratio": _crop_ratio,
    "pad": _pad,
    "output": _output,
    "detection": _detection,
}


def _same_file(sha: str, against: int, differences: list[Difference]) -> Difference:
    """The candidate is production's very file: nothing new (red) — unless its metadata differs, when the
    rows that differ are the finding and this one only says where to look (amber: the same network read
    another way is not itself the fault)."""
    changed = [d.field for d in differences if d.flag != OK]
    if changed:
        why = f"the same file as v{against}: only how it is read differs ({', '.join(changed)})"
        return Difference("model file", sha[:12], sha[:12], AMBER, why)
    return Difference("model file", sha[:12], sha[:12], RED, f"the same file as v{against}: nothing new")


def version_evidence(*, model: ModelState, version: int) -> Evidence:
    """The candidate against production: metadata diff, same-file check, and every provider's findings."""
    against = model.production_version if model.production_version != version else None
    differences: list[Difference] = []
    problems: list[str] = []
    ours: VersionInfo | None = None
    try:
        if against is not None:
            ours = mlflow_gateway.version_get(name=model.name, version=version)
            theirs = mlflow_gateway.version_get(name=model.name, version=against)
            differences = metadata_differences(
                mlflow_gateway.metadata_of(ours), mlflow_gateway.metadata_of(theirs)
            )
            sha = ours.tags.get(f"{mlflow_gateway.TAG_PREFIX}sha256", "")
            if sha and sha == theirs.tags.get(f"{mlflow_gateway.TAG_PREFIX}sha256"):
                differences.append(_same_file(sha, against, differences))
    except ApplicationError as exc:
        problems.append(exc.message)
    findings = [finding for provider in _providers for finding in provider(model, version, ours)]
    gates = gate_check(model=model, version=version)
    return Evidence(model.name, version, against, differences, findings, problems, gates)


def same_file_versions(*, name: str, sha256: str, version: int) -> list[int]:
    """Other versions of a model whose file has this SHA-256 (flagged when one is registered)."""
    return sorted(
        v.version
        for v in mlflow_gateway.version_list(name=name)
        if v.version != version and v.tags.get(f"{mlflow_gateway.TAG_PREFIX}sha256") == sha256
    )
