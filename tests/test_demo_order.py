"""The demo's walkthrough puts in production the version that measured faster: with INT8 slower on this
CPU, the fp32 version goes live last and the INT8 one is its rollback target."""

import pytest

from controlplane.demo import DemoVersion, demo_users, demo_walkthrough
from modelspec.examples import tiny_classifier_onnx
from modelspec.metadata import metadata_parse
from registry import selectors
from registry.models import ModelState

pytestmark = pytest.mark.django_db


def test_the_walkthrough_takes_the_versions_live_in_the_order_given():
    metadata = metadata_parse({"input_height": 32, "input_width": 32, "resize": "stretch"})
    versions = [
        DemoVersion(onnx_bytes=tiny_classifier_onnx(seed=seed), metadata=metadata, description=f"seed {seed}")
        for seed in (1, 2, 3)
    ]
    said: list[str] = []
    demo_walkthrough(
        model_name="order",
        versions=versions,
        users=demo_users(),
        progress=said.append,
        production_order=(2, 1),
    )
    model = ModelState.objects.get(name="order")
    assert (model.production_version, model.canary_version) == (1, 3)
    assert selectors.rollback_target(model=model) == 2
    assert any("v2: staging → canary 10 %" in line for line in said)
