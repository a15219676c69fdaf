"""Browser forms: they parse input only; the services decide (the file-or-URI rule and the size limit
too, in registry.services)."""

from typing import Any

from django import forms

from modelspec.choices import ColorOrder, Layout, ResizePolicy
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
        )
        return {key: self.cleaned_data[key] for key in keys}


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
    return initial
