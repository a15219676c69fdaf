"""A model from outside is checked in a child process capped in memory and time (modelspec.bounded_check):
a graph that blows a tiny input up to gigabytes, or runs for ever, is refused with 400 invalid_model naming
the limit it hit; the web worker (this test process) does not grow and keeps no child behind. Inputs with a
fixed dimension of 0 or less, and over-long labels, tags and params, are refused too."""

import json
import os
import signal
import threading
import time

import numpy as np
import psutil
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from onnx import TensorProto, helper, numpy_helper

from modelspec.examples import tiny_classifier_onnx
from registry.models import ModelState
from tests.factories import LABELS, METADATA
from tests.helpers import assert_error, token_client, upload

pytestmark = pytest.mark.django_db

# How far this process's resident size may move while it registers the bomb: the request's own buffers
# (a 300-byte file, the answer) and the allocator's noise stay well under it, while the bomb checked in
# this process would add the 4 GiB it allocates — 250 times this.
RSS_SLACK_MB = 16


def _graph(nodes, initializers, *, input_dims=("batch", 3, 32, 32), classes=10) -> bytes:
    graph = helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(input_dims))],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def expand_bomb(classes: int) -> bytes:
    """A few hundred bytes whose test inference expands the image's mean to [1, classes] float32."""
    return _graph(
        [
            helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1, 2, 3], keepdims=1),
            helper.make_node("Reshape", ["mean", "one_by_one"], ["scalar"]),
            helper.make_node("Expand", ["scalar", "shape"], ["probabilities"]),
        ],
        [
            numpy_helper.from_array(np.array([1, 1], np.int64), "one_by_one"),
            numpy_helper.from_array(np.array([1, classes], np.int64), "shape"),
        ],
        classes=classes,
    )


def endless_loop() -> bytes:
    """A classifier whose features pass through a Loop of 2**62 iterations before the linear layer."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["features_in"], ["features_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("features_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("features_out", TensorProto.FLOAT, None),
        ],
    )
    return _graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("Loop", ["trips", "", "flat"], ["looped"], body=body),
            helper.make_node("MatMul", ["looped", "W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        [
            numpy_helper.from_array(np.array(2**62, np.int64), "trips"),
            numpy_helper.from_array(np.ones((3, 10), np.float32), "W"),
        ],
    )


def classifier(input_dims) -> bytes:
    return _graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        [numpy_helper.from_array(np.ones((3, 10), np.float32), "W")],
        input_dims=input_dims,
    )


def _resident_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _peak_reset() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the kernel's "reset the peak resident size" (VmHWM)


def _peak_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))


def _checks_left() -> list[psutil.Process]:
    """Check processes this process started that still exist: zombies, or orphans run on."""
    mine = f'"parent_pid": {os.getpid()}'
    return [
        process
        for process in psutil.process_iter(["cmdline"])
        if "modelspec.bounded_check" in (process.info["cmdline"] or [])
        and mine in " ".join(process.info["cmdline"])
    ]


def test_expand_bomb_refused_naming_the_memory_limit_and_the_worker_does_not_grow(
    users, mlflow_client, settings
):
    settings.MODEL_CHECK_MEMORY_MB = 2048
    client = token_client(users["engineer"])
    bomb = expand_bomb(2**30)  # 4 GiB of float32 in the test inference
    assert len(bomb) < 400
    upload(client, "bomb", bomb)  # once first: the request path's lazy imports and caches are not the bomb's
    before = _resident_mb()
    _peak_reset()
    response = upload(client, "bomb", bomb)
    peak, after = _peak_mb(), _resident_mb()
    message = assert_error(response, 400, "invalid_model")["message"]
    assert message == "the model's check needed more than 2048 MB of memory (MODEL_CHECK_MEMORY_MB)"
    print(f"web process: {before:.1f} MB before, peak {peak:.1f} MB during, {after:.1f} MB after the bomb")
    assert peak - before < RSS_SLACK_MB and abs(after - before) < RSS_SLACK_MB
    assert not ModelState.objects.filter(name="bomb").exists()
    assert mlflow_client.search_registered_models() == []
    assert _checks_left() == []


def test_endless_inference_refused_naming_the_time_limit_and_no_child_is_left(users, mlflow_client, settings):
    settings.MODEL_CHECK_TIMEOUT_SECONDS = 3
    started = time.monotonic()
    response = upload(token_client(users["engineer"]), "endless", endless_loop())
    elapsed = time.monotonic() - started
    message = assert_error(response, 400, "invalid_model")["message"]
    assert message == "the model's check took longer than 3 s (MODEL_CHECK_TIMEOUT_SECONDS)"
    assert 3 <= elapsed < 3 + 5  # killed at the limit, not at the CPU-time backstop or later
    assert _checks_left() == []  # reaped (no zombie) and killed (no orphan running on)
    assert not ModelState.objects.filter(name="endless").exists()


@pytest.mark.parametrize(
    ("dims", "axis", "value"),
    [(["batch", 3, -1, 32], 2, -1), ([-1, 3, 32, 32], 0, -1), (["batch", 3, 32, 0], 3, 0)],
)
def test_fixed_input_dimension_not_positive_refused(users, mlflow_client, dims, axis, value):
    response = upload(token_client(users["engineer"]), "dims", classifier(dims))
    message = assert_error(response, 400, "invalid_model")["message"]
    assert f"dimension {axis} is fixed at {value}; a fixed dimension must be positive" in message
    assert not ModelState.objects.filter(name="dims").exists()


def test_label_of_201_characters_refused_and_200_taken(users, mlflow_client):
    client = token_client(users["engineer"])
    too_long = {**METADATA, "labels": [*LABELS[:9], "x" * 201]}
    message = assert_error(upload(client, "labels", metadata=too_long), 400, "invalid_metadata")["message"]
    assert message == "labels: label 9 is 201 characters long; at most 200"
    assert not ModelState.objects.filter(name="labels").exists()
    response = upload(client, "labels", metadata={**METADATA, "labels": [*LABELS[:9], "x" * 200]})
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("tags", {f"t{i}": "v" for i in range(101)}, "at most 100 entries"),
        ("params", {"p" * 251: "v"}, "names must be 1–250 characters long"),
        ("tags", {"team": "v" * 5001}, "5000"),
        ("description", "d" * 5001, "5000"),
    ],
)
def test_registration_text_over_its_cap_refused(users, mlflow_client, field, value, says):
    data = {
        "file": SimpleUploadedFile("model.onnx", tiny_classifier_onnx()),
        "metadata": json.dumps(METADATA),
        field: value if isinstance(value, str) else json.dumps(value),
    }
    response = token_client(users["engineer"]).post("/api/v1/models/caps/versions/", data, format="multipart")
    error = assert_error(response, 400, "invalid")
    assert says in json.dumps(error, ensure_ascii=False)
    assert not ModelState.objects.filter(name="caps").exists()


@pytest.mark.parametrize(
    ("ended_by", "says"),
    [
        (signal.SIGKILL, "the model's check needed more than 2048 MB of memory (MODEL_CHECK_MEMORY_MB)"),
        (
            signal.SIGSEGV,
            "the model's check crashed (SIGSEGV); most likely it needed more than 2048 MB of memory",
        ),
    ],
)
def test_check_killed_from_outside_is_refused_naming_the_memory_limit(
    users, mlflow_client, settings, ended_by, says
):
    """What the kernel's OOM killer (SIGKILL) or a crash at the cap (SIGSEGV) does to the child, done for
    real by a thread of this test to the check of a model that would otherwise run for ever."""
    settings.MODEL_CHECK_MEMORY_MB, settings.MODEL_CHECK_TIMEOUT_SECONDS = 2048, 60

    def kill_the_check() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if found := _checks_left():
                time.sleep(1.5)  # into the test inference: the interpreter and onnx are loaded by now
                found[0].send_signal(ended_by)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_check)
    killer.start()
    response = upload(token_client(users["engineer"]), "killed", endless_loop())
    killer.join()
    assert assert_error(response, 400, "invalid_model")["message"].startswith(says)
    assert _checks_left() == []
    assert not ModelState.objects.filter(name="killed").exists()


def test_checks_beyond_the_concurrency_limit_wait_then_get_503_checks_busy():
    from modelspec.bounded_check import ChecksBusy, model_check_bounded

    limits = {"input_size": (32, 32), "layout": "NCHW", "num_labels": 10, "output": "probabilities"}
    outcome: dict[str, object] = {}

    def slow() -> None:
        try:
            model_check_bounded(model_bytes=endless_loop(), memory_mb=1024, timeout_seconds=4, concurrency=1,
                                **limits)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the endless check is refused at its time limit
            outcome["slow"] = exc

    holder = threading.Thread(target=slow)
    holder.start()
    time.sleep(1)
    started = time.monotonic()
    with pytest.raises(ChecksBusy) as busy:
        model_check_bounded(model_bytes=tiny_classifier_onnx(seed=41), memory_mb=1024, timeout_seconds=1,
                            concurrency=1, **limits)  # fmt: skip
    assert busy.value.http_status == 503 and busy.value.code == "checks_busy"
    assert 0.9 < time.monotonic() - started < 3  # it waited its time for a slot, no longer
    holder.join(30)
    assert "MODEL_CHECK_TIMEOUT_SECONDS" in str(outcome["slow"])
    # The slot is free again: the next check runs.
    check = model_check_bounded(model_bytes=tiny_classifier_onnx(seed=41), memory_mb=1024, timeout_seconds=30,
                                concurrency=1, **limits)  # fmt: skip
    assert check.output_shape == (1, 10)
