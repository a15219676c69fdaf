"""Detection: boxes, each with a class and a confidence. The model's outputs (a post-processed graph's
boxes and scores, or a raw YOLO head we suppress ourselves: modelspec/detection.py) become boxes in the
*uploaded* image's pixels — the resize, crop or letterbox undone (modelspec.boxes.Placement).

An answer keeps every box at or above the detector's score threshold; what counts — in the response, the
signals and every comparison — are the boxes at or above its `min_confidence` (the metadata's default, or
what a request asks for: `respond`). Two answers are compared by matching their boxes per class at
IoU ≥ 0.5 by COCO's rule (modelspec.boxes.match), production as the reference: agreement is the F1.

Ground truth for an answer is boxes: feedback quotes the answer's boxes back as answered with the true
boxes (none: "no object"); a prediction id vouches for the boxes at the default cut (`vouched`), so the
quote is checked against it (`quoted_answer`), and both are checked against the version and the image
here (`truth_boxes`), with the field named."""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any, ClassVar

import numpy as np

from core.exceptions import BadRequest

from .. import detection
from ..boxes import Box, Placement, match
from ..choices import TaskKind
from ..metadata import ModelMetadata
from ..signals import PREFIX, Kind, Share, Signal
from .base import Answer, Headline, Task
from .classification import label_of, tracked_label

NO_OBJECT = 0xFFFF  # the headline's class index of an answer without boxes (a prediction id packs 16 bits)
GRID = 4  # box centres are counted in a GRID × GRID grid over the image (the monitoring page's heat map)
MAX_DRAWN = 50  # boxes a thumbnail draws (and evidence keeps) of one answer
TALLY_CLASSES = 3  # a tally key names the three most frequent classes of an answer
MATCHING = (
    "boxes matched per class at IoU ≥ 0.5 by COCO's rule (the candidate's boxes in order of confidence, "
    "each taking the unmatched production box of its class it overlaps most), so agreement reads like "
    "precision and recall with production taken as the truth"
)
XYXY = ("x1", "y1", "x2", "y2")
# What a prediction id vouches for: the image's size, then per box at the default cut (sorted, so the order
# a client quotes them in does not matter) its class, confidence in millionths and corners in tenths of a
# pixel as 64-bit integers — the rounding the answer itself has, so a value that went through any JSON
# parser reads the same. 100 boxes take well under 0.1 ms (the prediction's hot path).
VOUCHED_IMAGE = struct.Struct(">II")
MAX_FEEDBACK_BOXES = 1000  # boxes per list in feedback (a detector answers at most 1000: MAX_DETECTIONS)


class InvalidBoxes(BadRequest):
    """Boxes in feedback that no answer of the version could hold, or that do not fit the image; named as
    the input's own checks name a field: `fields` nested as in the body, with list positions as keys
    ({"truth": {"2": {"box": [message]}}}), and the dotted path before the message."""

    code = "invalid_boxes"

    def __init__(self, message: str, *, field: str):
        nested: Any = [message]
        for part in reversed(field.split(".")):
            nested = {part: nested}
        super().__init__(f"{field}: {message}", extra={"fields": nested})


def _check_box(box: dict[str, float], width: int, height: int, field: str) -> None:
    """Refused, not clipped: a box past the image is most often in another image's pixels, or normalized
    (0–1) — clipping it would turn a wrong coordinate system into plausible, wrong truth."""
    x1, y1, x2, y2 = (box[k] for k in XYXY)
    if not (x2 > x1 and y2 > y1):
        raise InvalidBoxes(
            f"a box has x2 > x1 and y2 > y1 (a positive size), got {x1}, {y1}, {x2}, {y2}", field=field
        )
    if not (0 <= x1 and 0 <= y1 and x2 <= width and y2 <= height):
        raise InvalidBoxes(
            f"a box lies inside the image, 0 ≤ x ≤ {width} and 0 ≤ y ≤ {height} (the answer's image size, "
            f"in its pixels), got {x1}, {y1}, {x2}, {y2}",
            field=field,
        )


def _vouched(detections: list[dict[str, Any]], width: int, height: int) -> bytes:
    rows = []
    for d in detections:  # a plain loop: a third of the time of unpacking a generator per box
        box = d["box"]
        rows.append((d["class_index"], d["confidence"] * 1e6, box["x1"] * 10, box["y1"] * 10, box["x2"] * 10,
                     box["y2"] * 10))  # fmt: skip
    whole = np.rint(np.array(rows, dtype=np.float64).reshape(-1, 6)).astype(">i8")  # the answer's rounding
    ordered = whole[np.lexsort(whole.T[::-1])] if len(whole) else whole
    return VOUCHED_IMAGE.pack(width, height) + ordered.tobytes()


def quoted_answer(detections: list[dict[str, Any]], image: dict[str, int], metadata: ModelMetadata) -> Answer:
    """The answer a client quotes back (its `detections` and `image` as answered, at the default cut or a
    lower one), checked for what an answer of this version can hold; its `vouched` bytes are what the
    prediction id's digest must match. Boxes under the default cut are dropped: the id vouches for the
    default cut's, and precision and recall are the version's at its own operating point."""
    width, height = image["width"], image["height"]
    for i, found in enumerate(detections):
        if found["class_index"] >= len(metadata.labels):
            raise InvalidBoxes(
                f"the version's classes are 0 to {len(metadata.labels) - 1}",
                field=f"detections.{i}.class_index",
            )
        if found["label"] != label_of(metadata, found["class_index"]):
            raise InvalidBoxes(
                f"class {found['class_index']} is {label_of(metadata, found['class_index'])!r}, "
                f"not {found['label']!r}",
                field=f"detections.{i}.label",
            )
        _check_box(found["box"], width, height, f"detections.{i}.box")
    spec = metadata.detection or detection.DetectorOutputs()
    answer = {"detections": detections, "min_confidence": spec.min_confidence, "image": image}
    return {**answer, "detections": kept(answer)}


def truth_boxes(truth: list[dict[str, Any]], image: dict[str, int], metadata: ModelMetadata) -> list[Box]:
    """The true boxes of an image ([] is "no object"), each of a class the version knows, inside the image."""
    known = set(metadata.labels)
    found = []
    for i, item in enumerate(truth):
        if item["label"] not in known:
            shown = ", ".join(repr(label) for label in metadata.labels[:5])
            raise InvalidBoxes(
                f"{item['label']!r} is not one of the version's {len(known)} labels (e.g. {shown})",
                field=f"truth.{i}.label",
            )
        _check_box(item["box"], image["width"], image["height"], f"truth.{i}.box")
        found.append(Box(item["label"], 1.0, *(item["box"][k] for k in XYXY)))
    return found


DETECTIONS = Signal(
    "detections", f"{PREFIX}_detections_per_image", Kind.NUMERIC,
    "Boxes per image at the detector's min_confidence (the bucket le=0 counts images with none)",
    edges=(0, 1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100),
    canary_checks=(("detections per image", "ks"), ("mean detections per image", "mean_drop")),
    alert_defaults=(("more images with no detection", "low_share", "critical"), ("detections per image moved", "ks", "warning")),
    title="Boxes per image", share=Share("Share of images with no detection", 0),
)  # fmt: skip
BOX_CONFIDENCE = Signal(
    "box_confidence", f"{PREFIX}_box_confidence", Kind.NUMERIC, "Confidence of each box",
    edges=(0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0),
    canary_checks=(("box confidence distribution", "ks"), ("mean box confidence", "mean_drop")),
    alert_defaults=(("mean box confidence fell", "mean_drop", "critical"),), title="Box confidence", per="box",
)  # fmt: skip
BOX_AREA = Signal(
    "box_area", f"{PREFIX}_box_area_share", Kind.NUMERIC, "Each box's area as a share of its image's",
    edges=(0.001, 0.003, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0), title="Box area (share of the image)",
    per="box",
)  # fmt: skip
BOX_ASPECT = Signal(
    "box_aspect", f"{PREFIX}_box_aspect_ratio", Kind.NUMERIC, "Each box's width / height",
    edges=(0.25, 0.5, 0.67, 0.8, 0.9, 1.1, 1.25, 1.5, 2.0, 4.0), title="Box aspect ratio (width / height)", per="box",
)  # fmt: skip
BOX_CENTRE = Signal(
    "box_centre", f"{PREFIX}_box_centre", Kind.CATEGORICAL,
    f"Box centres by cell of a {GRID}x{GRID} grid over the image (column-row, from the top left)",
    categories=("cell",), title=f"Box centres ({GRID}×{GRID} grid)", per="box", grid=GRID,
)  # fmt: skip
BOX_CLASSES = Signal(
    "box_classes", f"{PREFIX}_detected_class", Kind.CATEGORICAL,
    "Boxes by class (tracked classes, else 'other')", categories=("class",),
    canary_checks=(("box class mix", "chi_square"),),
    alert_defaults=(("box class mix changed", "chi_square", "warning"),),
    title="Boxes by class (tracked classes)", per="box",
)  # fmt: skip


def kept(answer: Answer, min_confidence: float | None = None) -> list[dict[str, Any]]:
    """The answer's boxes that count: at or above `min_confidence` (default: the answer's own)."""
    floor = answer["min_confidence"] if min_confidence is None else min_confidence
    return [d for d in answer["detections"] if d["confidence"] >= floor]


def boxes_of(answer: Answer) -> list[Box]:
    return [Box(d["label"], d["confidence"], *(d["box"][k] for k in XYXY)) for d in kept(answer)]


def outputs_of(metadata: ModelMetadata) -> detection.DetectorOutputs:
    """The metadata's description of the detector's outputs (the defaults when it gives none)."""
    return metadata.detection or detection.DetectorOutputs()


def cell(detection_: dict[str, Any], width: int, height: int) -> str:
    box = detection_["box"]
    cx, cy = (box["x1"] + box["x2"]) / 2 / max(width, 1), (box["y1"] + box["y2"]) / 2 / max(height, 1)
    return f"{min(int(cx * GRID), GRID - 1)}-{min(int(cy * GRID), GRID - 1)}"


class Detection(Task):
    name: ClassVar[str] = TaskKind.DETECTION.value
    display: ClassVar[str] = "boxes"
    agreement_name: ClassVar[str] = "Box F1 (IoU ≥ 0.5)"
    named_outputs: ClassVar[bool] = True
    feedback: ClassVar[str] = "boxes"
    reads: ClassVar[tuple[str, ...]] = ("detection",)  # which outputs are boxes, how they are read and kept
    # From true boxes sent back, at IoU 0.5 (mAP@0.5:0.95 too); no estimate before them (recall cannot be
    # read off the answers: a missed object leaves no box).
    performance: ClassVar[tuple[str, ...]] = ("precision", "recall", "map50", "map50_95")
    signals: ClassVar[tuple[Signal, ...]] = (
        DETECTIONS, BOX_CONFIDENCE, BOX_AREA, BOX_ASPECT, BOX_CENTRE, BOX_CLASSES,
    )  # fmt: skip

    def decode(self, raw: Any, metadata: ModelMetadata, placement: Placement | None = None) -> Answer:
        spec = outputs_of(metadata)
        outputs = raw if isinstance(raw, dict) else {"output": np.asarray(raw)}
        found = detection.decode(
            outputs, spec, input_width=metadata.input_width, input_height=metadata.input_height,
            num_classes=len(metadata.labels),
        )  # fmt: skip
        placement = placement or Placement.identity(metadata.input_width, metadata.input_height)
        in_image = placement.undo(found.boxes)
        detections = [
            {
                "label": label_of(metadata, int(cls)),
                "class_index": int(cls),
                "confidence": round(float(score), 6),
                "box": dict(zip(("x1", "y1", "x2", "y2"), (round(float(v), 1) for v in box), strict=True)),
            }
            for box, score, cls in zip(in_image, found.scores, found.classes, strict=True)
        ]
        answer = {
            "detections": detections,
            "min_confidence": spec.min_confidence,
            "image": {"width": placement.width, "height": placement.height},
        }
        return {**answer, "count": len(kept(answer))}

    def default_cut(self, metadata: ModelMetadata) -> float:
        return outputs_of(metadata).min_confidence

    def respond(self, answer: Answer, *, min_confidence: float | None = None) -> Answer:
        shown = kept(answer, min_confidence)
        floor = answer["min_confidence"] if min_confidence is None else min_confidence
        return {**answer, "detections": shown, "count": len(shown), "min_confidence": floor}

    def signal_values(self, answer: Answer, metadata: ModelMetadata) -> tuple[Any, ...]:
        boxes = kept(answer)
        width, height = answer["image"]["width"], answer["image"]["height"]
        sizes = [(d["box"]["x2"] - d["box"]["x1"], d["box"]["y2"] - d["box"]["y1"]) for d in boxes]
        area = max(width * height, 1)
        return (
            len(boxes),
            [d["confidence"] for d in boxes],
            [w * h / area for w, h in sizes],
            [w / h for w, h in sizes if h > 0],
            [cell(d, width, height) for d in boxes],
            [tracked_label(metadata, d["class_index"]) for d in boxes],
        )

    def headline(self, answer: Answer) -> Headline:
        boxes = kept(answer)
        if not boxes:
            return Headline(index=NO_OBJECT, label="no object", confidence=0.0)
        top = boxes[0]  # highest confidence first
        return Headline(index=top["class_index"], label=top["label"], confidence=top["confidence"])

    def vouched(self, answer: Answer) -> bytes:
        """The image's size and the boxes at the default cut (what feedback quotes back)."""
        return _vouched(kept(answer), answer["image"]["width"], answer["image"]["height"])

    def agreement(self, a: Answer, b: Answer) -> float:
        """F1 of b's boxes against a's, matched per class at IoU ≥ 0.5 (1.0 when neither has a box)."""
        return match(boxes_of(a), boxes_of(b)).f1

    def paired(self, a: Answer, b: Answer) -> dict[str, Any]:
        """b's boxes matched to a's (modelspec.boxes.match, a as the reference). `pairs`, `only_first` and
        `only_second` index each answer's boxes that count — its `detections` as `respond` shows them."""
        found = match(boxes_of(a), boxes_of(b))
        only_first, only_second = found.unmatched()
        return {
            "agreement_name": self.agreement_name,
            "agreement": found.f1,
            "matching": MATCHING,
            "pairs": [{"first": i, "second": j, "iou": round(iou, 4)} for i, j, iou in found.pairs],
            "only_first": only_first,
            "only_second": only_second,
            "f1": found.f1,
            "precision": found.precision,
            "recall": found.recall,
            "mean_iou": None if found.mean_iou is None else round(found.mean_iou, 4),
        }

    def drawn(self, answer: Answer) -> dict[str, Any]:
        return {
            **answer["image"],
            "boxes": [
                {
                    "label": d["label"],
                    "confidence": d["confidence"],
                    **d["box"],
                    "w": round(d["box"]["x2"] - d["box"]["x1"], 1),
                    "h": round(d["box"]["y2"] - d["box"]["y1"], 1),
                }
                for d in kept(answer)[:MAX_DRAWN]
            ],  # fmt: skip
        }

    def compare(self, pairs: list[tuple[Answer, Answer]]) -> dict[str, Any]:
        """Every pair's boxes matched (production as the reference), pooled: precision and recall of the
        candidate against production, mean IoU of the matched boxes, box counts, and per class how many
        of production's boxes the candidate lost and how many it added."""
        matched = reference = candidate = 0
        ious: list[float] = []
        lost: Counter[str] = Counter()
        gained: Counter[str] = Counter()
        by_class: Counter[str] = Counter()
        for a, b in pairs:
            found = match(boxes_of(a), boxes_of(b))
            matched += len(found.pairs)
            reference += len(found.reference)
            candidate += len(found.candidate)
            ious += [iou for _, _, iou in found.pairs]
            lost += found.lost
            gained += found.gained
            by_class.update(box.label for box in found.reference)
        classes = sorted(set(by_class) | set(lost) | set(gained), key=lambda c: -(lost[c] + gained[c]))
        return {
            "matching": MATCHING,
            "precision": matched / candidate if candidate else 1.0,
            "recall": matched / reference if reference else 1.0,
            "mean_iou": sum(ious) / len(ious) if ious else None,
            "boxes": {"production": reference, "candidate": candidate, "matched": matched},
            "per_class": [
                {"label": c, "production": by_class[c], "lost": lost[c], "gained": gained[c]}
                for c in classes[:20]
            ],
        }

    def tally_key(self, answer: Answer) -> str:
        counted = Counter(d["label"] for d in kept(answer))
        if not counted:
            return "no object"
        return ", ".join(f"{n} {label}" for label, n in counted.most_common(TALLY_CLASSES))
