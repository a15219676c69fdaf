"""Demo data: small ONNX classifiers built with onnx.helper, users per role, a walked-through workflow."""

from __future__ import annotations

import numpy as np
import onnx
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from onnx import TensorProto, helper, numpy_helper
from rest_framework.authtoken.models import Token

from . import services
from .choices import Role
from .metadata import metadata_parse
from .models import ModelState
from .roles import roles_ensure

DEMO_MODEL = "demo-classifier"
CIFAR_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def tiny_classifier_onnx(*, num_classes: int = 10, size: int = 32, seed: int = 0, opset: int = 17) -> bytes:
    """A real, runnable image classifier: global average pool → linear → softmax, NCHW float32."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(size=(3, num_classes)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(num_classes,)).astype(np.float32), "B")
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "tiny_classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", num_classes])],
        initializer=[weight, bias],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="controlplane"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


DEMO_PASSWORDS = {role: f"{role}-demo-pass" for role in Role.values}


def demo_users() -> dict[str, tuple[object, str]]:
    """One user per role, named after it; returns {role: (user, token)}."""
    roles_ensure()
    User = get_user_model()
    made = {}
    for role in Role.values:
        user, created = User.objects.get_or_create(username=role, defaults={"email": f"{role}@example.com"})
        if created:
            user.set_password(DEMO_PASSWORDS[role])
            user.save()
        user.groups.add(Group.objects.get(name=role))
        if role == Role.ADMIN:
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        token, _ = Token.objects.get_or_create(user=user)
        made[role] = (user, token.key)
    return made


def demo_registry(users: dict[str, tuple[object, str]]) -> list[str]:
    """Register three versions and walk them through the workflow once; does nothing the second time."""
    if ModelState.objects.filter(name=DEMO_MODEL).exists():
        return [f"{DEMO_MODEL} already exists; left as it is"]
    engineer, approver = users[Role.ENGINEER][0], users[Role.APPROVER][0]
    log = []
    metadata = metadata_parse(
        {"input_height": 32, "input_width": 32, "resize": "stretch", "labels": CIFAR_LABELS}
    )
    for seed, note in [(1, "baseline"), (2, "retrained on more data"), (3, "candidate")]:
        registered = services.version_register(
            model_name=DEMO_MODEL,
            actor=engineer,
            metadata=metadata,
            onnx_bytes=tiny_classifier_onnx(seed=seed),
            description=note,
            tags={"team": "vision", "seed": str(seed)},
            params={"seed": str(seed), "epochs": str(10 * seed)},
            metrics={"val_accuracy": round(0.70 + 0.05 * seed, 3)},
            dataset=("cifar10-train", f"demo{seed:04d}"),
        )
        log.append(f"registered {DEMO_MODEL} v{registered.version.version} ({note})")
    for version, weight in [(1, 10), (2, 25)]:
        services.version_stage_staging(model_name=DEMO_MODEL, version=version, actor=engineer)
        services.canary_start(model_name=DEMO_MODEL, version=version, weight=weight, actor=engineer)
        services.production_request(
            model_name=DEMO_MODEL, version=version, actor=engineer, reason="canary looked healthy"
        )
        services.production_approve(model_name=DEMO_MODEL, actor=approver, reason="numbers checked")
        log.append(f"v{version}: staging → canary {weight} % → production (approved by {approver})")
    services.version_stage_staging(model_name=DEMO_MODEL, version=3, actor=engineer, reason="next candidate")
    services.canary_start(model_name=DEMO_MODEL, version=3, weight=10, actor=engineer, reason="try on 10 %")
    log.append("v3: staging → canary 10 %")
    return log
