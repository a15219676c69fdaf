"""Classification: one label per image. The model outputs a score per class (probabilities, or logits the
task turns into probabilities); the answer is the top-1 label and confidence with the top-k."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..boxes import Placement
from ..choices import OutputKind, TaskKind
from ..metadata import ModelMetadata
from ..signals import PREFIX, Kind, Signal
from .base import Answer, Headline, Task

TOP_K = 5

CONFIDENCE = Signal(
    "confidence", f"{PREFIX}_prediction_confidence", Kind.NUMERIC, "Top-1 probability of each prediction",
    edges=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 0.995, 1.0),
    canary_checks=(("confidence distribution", "ks"), ("mean confidence", "mean_drop")),
    alert_defaults=(("mean confidence fell", "mean_drop", "critical"), ("confidence distribution moved", "ks", "warning")),
    title="Top-1 confidence",
)  # fmt: skip
CLASSES = Signal(
    "classes", f"{PREFIX}_predicted_class", Kind.CATEGORICAL,
    "Top-1 predictions by class (tracked classes, else 'other')", categories=("class",),
    canary_checks=(("predicted-class mix", "chi_square"),), title="Predicted-class mix (tracked classes)",
)  # fmt: skip


def label_of(metadata: ModelMetadata, index: int) -> str:
    """A class's name: its label, or "class N" for a model registered without labels."""
    labels = metadata.labels
    return labels[index] if index < len(labels) else f"class {index}"


def tracked_label(metadata: ModelMetadata, index: int) -> str:
    """The predicted-class label in metrics and baselines: tracked classes by name, else 'other'."""
    return label_of(metadata, index) if index in metadata.classes_by_name else "other"


def probabilities(scores: np.ndarray, metadata: ModelMetadata) -> np.ndarray:
    """The model's scores for one input as probabilities (softmax when the metadata says logits)."""
    if metadata.output != OutputKind.LOGITS:
        return scores
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()


class Classification(Task):
    name: ClassVar[str] = TaskKind.CLASSIFICATION.value
    display: ClassVar[str] = "bars"
    agreement_name: ClassVar[str] = "Top-1 agreement"
    signals: ClassVar[tuple[Signal, ...]] = (CONFIDENCE, CLASSES)
    reads: ClassVar[tuple[str, ...]] = ("output",)  # probabilities, or logits it takes the softmax of
    performance: ClassVar[tuple[str, ...]] = ("accuracy", "estimated_accuracy")  # labels; CBPE before them

    def decode(self, raw: Any, metadata: ModelMetadata, placement: Placement | None = None) -> Answer:
        probs = probabilities(np.asarray(raw), metadata)
        order = np.argsort(probs)[::-1][:TOP_K]
        top = [
            {"index": int(i), "label": label_of(metadata, int(i)), "confidence": float(probs[i])}
            for i in order
        ]
        return {"label": top[0]["label"], "confidence": top[0]["confidence"], "top_k": top}

    def signal_values(self, answer: Answer, metadata: ModelMetadata) -> tuple[float | str, ...]:
        return answer["confidence"], tracked_label(metadata, answer["top_k"][0]["index"])

    def headline(self, answer: Answer) -> Headline:
        top = answer["top_k"][0]
        return Headline(index=top["index"], label=top["label"], confidence=top["confidence"])

    def agreement(self, a: Answer, b: Answer) -> float:
        """The same top-1 label: 1, else 0."""
        return 1.0 if a["label"] == b["label"] else 0.0

    def tally_key(self, answer: Answer) -> str:
        return str(answer["label"])
