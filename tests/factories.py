"""Test data builders, the one place tests make users, versions, images and workflow states."""

from __future__ import annotations

import io

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from PIL import Image

from controlplane.demo import walk_to_production
from modelspec.examples import tiny_classifier_onnx
from modelspec.metadata import metadata_parse
from registry import services

LABELS = [f"class-{i}" for i in range(10)]
METADATA = {"input_height": 32, "input_width": 32, "resize": "stretch", "labels": LABELS}
# A model trained with 0.5/0.5 normalization, and the same model registered with the form's defaults
# (ImageNet mean/std, no labels): the slip the approval evidence must flag.
TUNED = {**METADATA, "mean": [0.5] * 3, "std": [0.5] * 3}
FORM_DEFAULTS = {"input_height": 32, "input_width": 32, "resize": "stretch"}


def make_user(username: str, *roles: str):
    user = get_user_model().objects.create_user(username=username, password=f"{username}-pw-123")
    for role in roles:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    if "admin" in roles:
        user.is_staff = True
        user.save()
    return user


def register(name: str, actor, *, seed: int = 1, metadata: dict | None = None, **kwargs):
    """A tiny real classifier (the same weights for the same seed) registered through the service."""
    return services.version_register(
        model_name=name,
        actor=actor,
        metadata=metadata_parse(metadata or METADATA),
        onnx_file=tiny_classifier_onnx(seed=seed),
        **kwargs,
    )


DETECTOR_LABELS = ["cat", "dog", "bird"]


def register_detector(
    name: str, actor, *, seed: int = 4, count: int = 6, score_gain: float = 1e-3, min_confidence: float = 0.0
):
    """A tiny real detector (modelspec.detector_examples: fixed boxes from the seed, its scores following
    the input's mean by `score_gain`) registered through the service."""
    from modelspec.detector_examples import tiny_detector_onnx

    metadata = {
        "input_height": 32, "input_width": 32, "resize": "stretch", "labels": DETECTOR_LABELS,
        "task": "detection",
        "detection": {"format": "boxes", "max_detections": 50, "min_confidence": min_confidence},
    }  # fmt: skip
    return services.version_register(
        model_name=name,
        actor=actor,
        metadata=metadata_parse(metadata),
        onnx_file=tiny_detector_onnx(fmt="xyxy_pixels", num_classes=3, size=32, count=count, seed=seed,
                                     score_gain=score_gain),
    )  # fmt: skip


def to_production(name: str, version: int, users: dict) -> None:
    """Walk one version through every stage, as the workflow demands."""
    walk_to_production(
        model_name=name, version=version, engineer=users["engineer"], approver=users["approver"]
    )


def start_canary(version: int, weight: int, users: dict, name: str = "cats") -> None:
    services.version_stage_staging(model_name=name, version=version, actor=users["engineer"])
    services.canary_start(model_name=name, version=version, weight=weight, actor=users["engineer"])


def png(seed: int = 0, size=(48, 32)) -> bytes:
    """A random RGB image as PNG bytes."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def team_member(user, team: str, *roles: str):
    """Give the user roles for the models of a team (made if new)."""
    from core.models import Team, TeamMembership

    found, _ = Team.objects.get_or_create(slug=team, defaults={"name": team})
    for role in roles:
        TeamMembership.objects.get_or_create(team=found, user=user, role=role)
    return user


def give_model(name: str, team: str) -> None:
    from core.models import ModelOwnership, Team

    found, _ = Team.objects.get_or_create(slug=team, defaults={"name": team})
    ModelOwnership.objects.update_or_create(model_name=name, defaults={"team": found})
