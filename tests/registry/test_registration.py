"""Registration: only a checked, runnable ONNX classifier enters MLflow; anything else leaves no trace."""

import onnx
import pytest
from onnx import TensorProto, helper

from core.exceptions import BadRequest, PayloadTooLarge
from modelspec.examples import tiny_classifier_onnx
from modelspec.metadata import MAX_NAMED_CLASSES, InvalidMetadata, metadata_parse
from modelspec.onnx_runtime import InvalidModel
from registry import services
from registry.models import ModelState, PromotionEvent
from tests.factories import METADATA, register

pytestmark = pytest.mark.django_db


def nothing_written(client, name="cats"):
    assert not ModelState.objects.filter(name=name).exists()
    assert PromotionEvent.objects.count() == 0
    assert client.search_registered_models() == []


def test_register_upload_creates_mlflow_version_with_metadata_and_run(users, mlflow_client):
    registered = register("cats", users["engineer"], tags={"team": "vision"}, dataset=("train", "abc123"))
    assert registered.version.version == 1
    mv = mlflow_client.get_model_version("cats", "1")
    assert (
        mv.tags["cp.input_size"] == "32x32"
        and mv.tags["cp.num_labels"] == "10"
        and mv.tags["team"] == "vision"
    )
    assert mv.tags["cp.registered_by"] == "engineer"
    run = mlflow_client.get_run(mv.run_id)
    assert run.data.params["input_size"] == "32x32"
    assert run.data.metrics["test_inference_ms"] > 0
    assert run.inputs.dataset_inputs[0].dataset.digest == "abc123"
    assert registered.check.output_shape == (1, 10)
    event = PromotionEvent.objects.get()
    assert (event.action, event.to_version, event.actor) == ("register", 1, users["engineer"])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"this is a text file, not a model", "not an ONNX model"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not an ONNX model"),
    ],
)
def test_register_non_onnx_refused_and_nothing_written(users, mlflow_client, payload, message):
    with pytest.raises(InvalidModel, match=message) as refused:
        services.version_register(
            model_name="cats", actor=users["engineer"], metadata=metadata_parse(METADATA), onnx_file=payload
        )
    assert refused.value.http_status == 400
    nothing_written(mlflow_client)


def test_register_checker_failure_refused(users, mlflow_client):
    model = onnx.load_from_string(tiny_classifier_onnx())
    model.graph.node[2].input[1] = "missing_weight"  # Gemm now reads a tensor nothing produces
    with pytest.raises(InvalidModel, match="onnx.checker"):
        services.version_register(
            model_name="cats",
            actor=users["engineer"],
            metadata=metadata_parse(METADATA),
            onnx_file=model.SerializeToString(),
        )
    nothing_written(mlflow_client)


def test_register_label_count_mismatch_refused(users, mlflow_client):
    metadata = metadata_parse({**METADATA, "labels": ["cat", "dog"]})
    with pytest.raises(InvalidModel, match="outputs 10 classes but 2 labels"):
        services.version_register(
            model_name="cats", actor=users["engineer"], metadata=metadata, onnx_file=tiny_classifier_onnx()
        )
    nothing_written(mlflow_client)


def test_register_input_size_contradiction_refused(users, mlflow_client):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    fixed = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    fixed.ir_version = 8
    with pytest.raises(InvalidModel, match="metadata says NCHW 32x32"):
        services.version_register(
            model_name="cats",
            actor=users["engineer"],
            metadata=metadata_parse(METADATA),
            onnx_file=fixed.SerializeToString(),
        )
    nothing_written(mlflow_client)


def test_register_oversized_refused_with_413(users, mlflow_client, settings):
    settings.MODEL_UPLOAD_MAX_BYTES = 100
    with pytest.raises(PayloadTooLarge) as refused:
        register("cats", users["engineer"])
    assert refused.value.http_status == 413
    nothing_written(mlflow_client)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"layout": "CHW"}, "layout must be one of"),
        ({"mean": "0.5, 0.5"}, "mean must be 3 numbers"),
        ({"std": [1, 0, 1]}, "std values must be positive"),
        ({"input_height": 0}, "between 1 and 8192"),
        ({"colour": "RGB"}, "unknown metadata fields: colour"),
        ({"labels": "[not json"}, "labels: not valid JSON"),
    ],
)
def test_metadata_validation_messages(metadata, message):
    with pytest.raises(InvalidMetadata, match=message):
        metadata_parse(metadata)


def test_register_from_mlflow_run_uri_keeps_lineage(users, mlflow_client, tmp_path):
    experiment = mlflow_client.create_experiment("training", artifact_location=(tmp_path / "art").as_uri())
    run = mlflow_client.create_run(experiment)
    mlflow_client.log_param(run.info.run_id, "lr", "0.01")
    mlflow_client.log_metric(run.info.run_id, "val_accuracy", 0.91)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "classifier.onnx").write_bytes(tiny_classifier_onnx(seed=5))
    mlflow_client.log_artifacts(run.info.run_id, str(tmp_path / "out"), "exported")
    registered = services.version_register(
        model_name="cats",
        actor=users["engineer"],
        metadata=metadata_parse(METADATA),
        source_uri=f"runs:/{run.info.run_id}/exported",
    )
    assert registered.version.source_run_id == run.info.run_id
    assert registered.version.tags["cp.source_uri"] == f"runs:/{run.info.run_id}/exported"


def test_register_from_unknown_run_is_404_and_nothing_written(users, mlflow_client):
    with pytest.raises(Exception) as refused:
        services.version_register(
            model_name="cats",
            actor=users["engineer"],
            metadata=metadata_parse(METADATA),
            source_uri="runs:/0123456789abcdef0123456789abcdef/model",
        )
    assert getattr(refused.value, "http_status", None) == 404
    nothing_written(mlflow_client)


@pytest.mark.parametrize("name", ["", "has space", "-leading", "a/b", "x" * 101])
def test_register_bad_model_name_refused(users, mlflow_client, name):
    with pytest.raises(BadRequest):
        register(name, users["engineer"])
    assert mlflow_client.search_registered_models() == []


def test_predicted_class_metric_names_declared_classes_or_every_class_of_a_small_model():
    small = metadata_parse({"labels": [f"c{i}" for i in range(10)]})
    assert small.classes_by_name == frozenset(range(10))
    large = metadata_parse({"labels": [f"c{i}" for i in range(MAX_NAMED_CLASSES + 1)]})
    assert large.classes_by_name == frozenset()  # a big model declares what to watch, not its first 50
    declared = metadata_parse({"labels": [f"c{i}" for i in range(1000)], "tracked_classes": [281, 282]})
    assert declared.classes_by_name == frozenset({281, 282})
