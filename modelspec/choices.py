"""Named constants of the model-file contract: tensor layouts, colour orders, resize policies, tasks."""

from django.db import models


class Layout(models.TextChoices):
    NCHW = "NCHW", "NCHW (channels first)"
    NHWC = "NHWC", "NHWC (channels last)"


class ColorOrder(models.TextChoices):
    RGB = "RGB", "RGB"
    BGR = "BGR", "BGR"


class ResizePolicy(models.TextChoices):
    STRETCH = "stretch", "Stretch to the input size"
    CENTER_CROP = "center_crop", "Resize shorter side, centre crop"
    LETTERBOX = "letterbox", "Fit inside, pad the rest"


class OutputKind(models.TextChoices):
    PROBABILITIES = "probabilities", "Probabilities (sum to 1)"
    LOGITS = "logits", "Logits (serving applies softmax)"


class TaskKind(models.TextChoices):
    """What a model does, so every consumer asks its task (modelspec/tasks) how to read and compare its
    answers. A version's metadata names it; versions registered before it existed are classifiers."""

    CLASSIFICATION = "classification", "Classification (one label per image, top-k)"
    DETECTION = "detection", "Detection (boxes with a label and confidence each)"
