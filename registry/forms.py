"""Browser forms: they parse input only; the services decide (the file-or-URI rule and the size limit
too, in registry.services)."""

import json
from typing import Any

from django import forms

from modelspec.choices import ColorOrder, Layout, ResizePolicy, TaskKind
from modelspec.metadata import IMAGENET_MEAN, IMAGENET_STD, MAX_INPUT_SIDE


class RegisterForm(forms.Form):
    model_name = forms.CharField(max_length=100, help_text="existing or new model name")
    file = forms.FileField(required=False, help_text="an .onnx file")
    source_uri = forms.CharField(
        label="MLflow URI",
        required=False,
        max_length=2000,
        help_text="or an MLflow artifact URI such as runs:/<run_id>/model",
    )
    input_height = forms.IntegerField(min_value=1, max_value=MAX_INPUT_SIDE, initial=224)
    input_width = forms.IntegerField(min_value=1, max_value=MAX_INPUT_SIDE, initial=224)
    layout = forms.ChoiceField(choices=Layout.choices, initial=Layout.NCHW)
    color_order = forms.ChoiceField(choices=ColorOrder.choices, initial=ColorOrder.RGB)
    resize = forms.ChoiceField(choices=ResizePolicy.choices, initial=ResizePolicy.CENTER_CROP)
    scale = forms.FloatField(initial=1 / 255, help_text="pixel values are multiplied by this first")
    mean = forms.CharField(initial=", ".join(map(str, IMAGENET_MEAN)))
    std = forms.CharField(initial=", ".join(map(str, IMAGENET_STD)))
    labels = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="one per line"
    )
    task = forms.ChoiceField(choices=TaskKind.choices, initial=TaskKind.CLASSIFICATION, required=False)
    pad = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=255,
        help_text="letterbox: the padding's pixel value (YOLO: 114)",
    )
    detection = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text='a detector\'s outputs as JSON, e.g. {"format": "yolo"} (docs/detection.md); empty: the defaults',
    )
    description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    dataset_name = forms.CharField(required=False, max_length=500)
    dataset_digest = forms.CharField(required=False, max_length=36)
    team = forms.ChoiceField(
        required=False,
        choices=[("", "—")],
        help_text="the team a new model belongs to (a known model keeps its own)",
    )

    def metadata_dict(self) -> dict[str, Any]:
        keys = (
            "input_height",
            "input_width",
            "layout",
            "color_order",
            "resize",
            "scale",
            "mean",
            "std",
            "labels",
            "task",
            "pad",
        )
        chosen = {key: self.cleaned_data[key] for key in keys} | {"detection": self.cleaned_data["detection"]}
        return chosen | {"task": chosen["task"] or TaskKind.CLASSIFICATION}  # a form posted without it

    def clean_detection(self) -> dict[str, Any] | None:
        """The JSON text as an object (its fields are checked with the rest of the metadata)."""
        text = self.cleaned_data["detection"].strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from exc
        if not isinstance(value, dict):
            raise forms.ValidationError('a JSON object, such as {"format": "yolo"}')
        return value


def initial_from(metadata: dict[str, Any]) -> dict[str, Any]:
    """Form values from a version's stored metadata (a new version starts from the previous one's)."""
    initial: dict[str, Any] = {
        k: metadata[k]
        for k in ("input_height", "input_width", "layout", "color_order", "resize", "scale")
        if k in metadata
    }
    for key in ("mean", "std"):
        if key in metadata:
            initial[key] = ", ".join(f"{v:g}" for v in metadata[key])
    initial["labels"] = "\n".join(metadata.get("labels", []))
    initial["task"] = metadata.get("task") or TaskKind.CLASSIFICATION
    if metadata.get("pad") is not None:
        initial["pad"] = metadata["pad"]
    if metadata.get("detection"):
        initial["detection"] = json.dumps(metadata["detection"])
    return initial
