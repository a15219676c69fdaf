"""The task contract: classification decodes real model outputs, compares answers and names its signals;
a task no implementation has is refused."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from modelspec.choices import TaskKind
from modelspec.examples import tiny_classifier_onnx
from modelspec.metadata import InvalidMetadata, metadata_from_stored, metadata_parse
from modelspec.onnx_runtime import LoadedModel
from modelspec.tasks import TASKS, Change, task_for, task_named
from modelspec.tasks.classification import TOP_K
from tests.factories import LABELS, METADATA


def tiny_logits_onnx(*, seed: int) -> bytes:
    """tiny_classifier_onnx's model (the same weights for the same seed) without its softmax: logits out."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(size=(3, 10)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(10,)).astype(np.float32), "B")
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
        ],
        "tiny_logits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def inputs(n: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(size=(1, 3, 32, 32)).astype(np.float32) for _ in range(n)]


def test_classification_decodes_logits_into_the_top_k_of_their_softmax():
    metadata = metadata_parse({**METADATA, "output": "logits"})
    task = task_for(metadata)
    model = LoadedModel(tiny_logits_onnx(seed=3))
    for tensor in inputs():
        logits = model.run(tensor)[0].astype(np.float64)
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        answer = task.decode(model.run(tensor)[0], metadata)
        assert [entry["index"] for entry in answer["top_k"]] == list(np.argsort(-expected)[:TOP_K])
        assert [entry["label"] for entry in answer["top_k"]] == [
            LABELS[i] for i in np.argsort(-expected)[:TOP_K]
        ]
        assert [entry["confidence"] for entry in answer["top_k"]] == pytest.approx(
            sorted(expected, reverse=True)[:TOP_K], abs=1e-6
        )
        assert (answer["label"], answer["confidence"]) == (
            answer["top_k"][0]["label"],
            answer["top_k"][0]["confidence"],
        )
        assert set(answer) == {"label", "confidence", "top_k"}  # the JSON answer's task fields, nothing more


def test_the_same_weights_with_and_without_softmax_answer_alike():
    """A model that outputs probabilities is read as it is; its logits twin gets the softmax: one answer."""
    probs_meta = metadata_parse(METADATA)
    logits_meta = metadata_parse({**METADATA, "output": "logits"})
    with_softmax, without = LoadedModel(tiny_classifier_onnx(seed=3)), LoadedModel(tiny_logits_onnx(seed=3))
    task = task_for(probs_meta)
    for tensor in inputs():
        a = task.decode(with_softmax.run(tensor)[0], probs_meta)
        b = task.decode(without.run(tensor)[0], logits_meta)
        assert task.agreement(a, b) == 1.0
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-5)


def test_a_model_without_labels_names_its_classes_by_index():
    metadata = metadata_parse({"input_size": [32, 32], "resize": "stretch"})
    answer = task_for(metadata).decode(np.array([0.1, 0.7, 0.2], dtype=np.float32), metadata)
    assert [entry["label"] for entry in answer["top_k"]] == ["class 1", "class 2", "class 0"]


def answer(label: str, confidence: float = 0.9, index: int = 0) -> dict:
    return {
        "label": label,
        "confidence": confidence,
        "top_k": [{"index": index, "label": label, "confidence": confidence}],
    }


def test_classification_agreement_is_the_same_top_1_label():
    task = task_named("classification")
    assert task.agreement(answer("cat", 0.9), answer("cat", 0.4)) == 1.0
    assert task.agreement(answer("cat"), answer("dog")) == 0.0
    assert task.agrees(answer("cat"), answer("cat")) and not task.agrees(answer("cat"), answer("dog"))
    assert task.change(answer("cat"), answer("cat", 0.2)) is None
    assert task.change(answer("cat"), answer("dog")) == Change("cat", "dog")


def test_the_changes_summary_counts_each_move_most_frequent_first():
    task = task_named("classification")
    pairs = [
        (answer("cat"), answer("dog")),
        (answer("cat"), answer("cat")),
        (answer("owl"), answer("cat")),
        (answer("cat"), answer("dog")),
    ]
    assert task.changes(pairs) == [(Change("cat", "dog"), 2), (Change("owl", "cat"), 1)]
    assert task.changes([(answer("cat"), answer("cat"))]) == []


def test_classification_exports_confidence_and_the_tracked_class():
    metadata = metadata_parse({**METADATA, "tracked_classes": [3]})
    task = task_for(metadata)
    assert [s.name for s in task.signals] == ["confidence", "classes"]
    assert task.signal_values(answer("class-3", 0.8, index=3), metadata) == (0.8, "class-3")
    assert task.signal_values(answer("class-4", 0.6, index=4), metadata) == (0.6, "other")
    headline = task.headline(answer("class-4", 0.6, index=4))
    assert (headline.index, headline.label, headline.confidence) == (4, "class-4", 0.6)
    assert task.display == "bars"


def test_every_task_name_has_a_task_with_well_formed_signals():
    assert set(TASKS) == set(TaskKind.values)
    for task in TASKS.values():
        assert task.display
        assert all(s.numeric or len(s.categories) == 1 for s in task.signals)


def test_an_unknown_task_is_refused_with_the_known_ones_named():
    with pytest.raises(InvalidMetadata, match="task must be one of classification, detection, got 'pose'"):
        metadata_parse({**METADATA, "task": "pose"})
    with pytest.raises(InvalidMetadata, match="got 'segmentation'"):
        task_named("segmentation")


def test_metadata_names_its_task_and_older_versions_are_classifiers():
    assert metadata_parse(METADATA).task == "classification"
    assert metadata_parse(METADATA).as_dict()["task"] == "classification"
    stored = metadata_parse(METADATA).as_dict()
    del stored["task"]  # written before metadata had a task
    assert task_for(metadata_from_stored(stored)).name == "classification"


@pytest.mark.django_db
def test_registering_a_version_of_an_unknown_task_is_a_400_and_registers_nothing(users, mlflow_client):
    from tests.helpers import assert_error, token_client, upload

    err = assert_error(
        upload(token_client(users["engineer"]), metadata={"task": "segmentation"}), 400, "invalid_metadata"
    )
    assert "task must be one of classification, detection" in err["message"]
    assert mlflow_client.search_registered_models() == []


def test_classification_pairs_two_answers_by_its_agreement_alone():
    task = task_named("classification")
    assert task.paired(answer("cat"), answer("dog")) == {
        "agreement_name": "Top-1 agreement",
        "agreement": 0.0,
    }
    assert task.default_cut(metadata_parse(METADATA)) is None


def detections(*found):
    """A detection answer (cut at 0.3) of (label, confidence, x1, y1, x2, y2) boxes."""
    boxes = [
        {
            "label": label,
            "class_index": 0,
            "confidence": c,
            "box": dict(zip(("x1", "y1", "x2", "y2"), xyxy, strict=True)),
        }
        for label, c, *xyxy in found
    ]
    return {"detections": boxes, "min_confidence": 0.3, "image": {"width": 100, "height": 100}}


def test_detection_pairs_boxes_by_index_as_coco_matching_does():
    task = task_named("detection")
    production = detections(
        ("cat", 0.9, 0, 0, 10, 10), ("dog", 0.8, 50, 50, 90, 90), ("cat", 0.2, 0, 0, 10, 10)
    )  # the last is under the cut
    canary = detections(
        ("dog", 0.7, 52, 50, 90, 92), ("cat", 0.6, 60, 60, 70, 70), ("dog", 0.5, 0, 0, 10, 10)
    )
    found = task.paired(production, canary)
    assert [(p["first"], p["second"]) for p in found["pairs"]] == [(1, 0)]  # the dog; the cat's box moved
    assert found["pairs"][0]["iou"] == pytest.approx(38 * 40 / (40 * 40 + 38 * 42 - 38 * 40), abs=1e-4)
    assert (found["only_first"], found["only_second"]) == ([0], [1, 2])  # a dog never pairs with a cat
    assert found["f1"] == found["agreement"] == pytest.approx(2 * 1 / (2 + 3))
    assert (found["precision"], found["recall"]) == (pytest.approx(1 / 3), 0.5)
    assert found["mean_iou"] == found["pairs"][0]["iou"]
    nothing = task.paired(detections(), detections())
    assert (nothing["pairs"], nothing["f1"], nothing["mean_iou"]) == ([], 1.0, None)


def test_detection_cuts_at_its_metadatas_min_confidence_by_default():
    task = task_named("detection")
    detector = {**METADATA, "task": "detection", "detection": {"min_confidence": 0.6}}
    assert task.default_cut(metadata_parse(detector)) == 0.6
    assert task.default_cut(metadata_parse({**METADATA, "task": "detection"})) == 0.25


def test_what_a_detectors_id_vouches_for_is_its_boxes_at_the_default_cut_in_any_order():
    detection = TASKS[TaskKind.DETECTION]
    boxes = [
        {"label": "cat", "class_index": 0, "confidence": 0.912345, "box": {"x1": 1.5, "y1": 2.0, "x2": 30.1, "y2": 40.0}},
        {"label": "dog", "class_index": 1, "confidence": 0.6, "box": {"x1": 10.0, "y1": 5.5, "x2": 20.0, "y2": 9.9}},
        {"label": "dog", "class_index": 1, "confidence": 0.2, "box": {"x1": 0.0, "y1": 0.0, "x2": 5.0, "y2": 5.0}},
    ]  # fmt: skip
    answer = {"detections": boxes, "min_confidence": 0.5, "image": {"width": 64, "height": 48}}
    vouched = detection.vouched(answer)
    assert detection.vouched({**answer, "detections": boxes[::-1]}) == vouched  # the order quoted aside
    assert detection.vouched({**answer, "detections": boxes[:2]}) == vouched  # under the cut: not vouched
    assert TASKS[TaskKind.CLASSIFICATION].vouched({"label": "cat"}) is None
    moved = [{**boxes[0], "box": {**boxes[0]["box"], "x2": 30.2}}, *boxes[1:]]
    surer = [{**boxes[0], "confidence": 0.912346}, *boxes[1:]]
    for changed in (
        {**answer, "detections": moved},
        {**answer, "detections": surer},
        {**answer, "detections": boxes[1:]},
        {**answer, "image": {"width": 64, "height": 47}},
        {**answer, "detections": [], "image": {"width": 64, "height": 48}},
    ):
        assert detection.vouched(changed) != vouched
    # what JSON does to the numbers (1.5 → 1.5000000000000002 in another parser's float) does not matter
    jittered = [
        {**b, "confidence": b["confidence"] + 1e-12, "box": {k: v + 1e-9 for k, v in b["box"].items()}}
        for b in boxes
    ]
    assert detection.vouched({**answer, "detections": jittered}) == vouched


def test_a_versions_contract_is_its_tasks_and_its_resizes_own_fields():
    from modelspec.tasks import contract_fields

    assert contract_fields({}) == {"output", "crop_ratio"}  # an older version: a centre-cropping classifier
    assert contract_fields({"resize": "letterbox"}) == {"output", "pad"}
    assert contract_fields({"task": "detection", "resize": "stretch"}) == {"detection"}
    assert contract_fields({"task": "detection", "resize": "letterbox"}) == {"detection", "pad"}
    with pytest.raises(InvalidMetadata):
        contract_fields({"task": "segmentation"})
