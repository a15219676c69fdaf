"""What a signal is: one measured quantity of every prediction, as a Prometheus metric with fixed bucket
edges (numeric) or a counter by category (categorical). The catalogue itself is serving's
(serving/signal_catalogue.py): the image signals every task shares, plus the answer signals each task declares
(modelspec/tasks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import models
from prometheus_client.utils import floatToGoString

PREFIX = "cvcp"


class Kind(models.TextChoices):
    NUMERIC = "numeric", "Numeric (histogram)"
    CATEGORICAL = "categorical", "Categorical (counts per category)"


@dataclass(frozen=True)
class Share:
    """A share of a numeric signal's observations worth reading on its own: those in the buckets whose
    upper edge is at or below `upto` (a detector's images with no box: detections per image ≤ 0). Its
    one home: the monitoring page charts it, and a rule on the signal with the `low_share` method alerts
    when it rises."""

    title: str
    upto: float


@dataclass(frozen=True)
class Signal:
    name: str
    metric: str  # the Prometheus metric's name, without _bucket / _sum / _total
    kind: str
    help: str
    edges: tuple[float, ...] = ()  # numeric: the buckets' upper edges
    only: dict[str, str] = field(default_factory=dict)  # numeric: the series that count (label → value)
    categories: tuple[str, ...] = ()  # categorical: the labels whose values name a category
    # How a canary is judged against production on this signal: (check name, drift method) pairs.
    canary_checks: tuple[tuple[str, str], ...] = ()
    # The rules a new model of a task starts with on this signal: (rule name, drift method, severity).
    alert_defaults: tuple[tuple[str, str, str], ...] = ()
    title: str = ""  # what pages call it ("" : its name)
    per: str = "image"  # what one observation is: an image, or a box of a detector's answer
    share: Share | None = None  # a share of its observations worth its own chart (see Share)
    # categorical: its categories are the "column-row" cells of a grid × grid over the image (a detector's
    # box centres), drawn as a heat map; 0: plain categories
    grid: int = 0

    @property
    def heading(self) -> str:
        return self.title or self.name

    @property
    def mean_judged(self) -> bool:
        """Whether its mean is judged (a mean_drop canary check): pages draw the baseline's band for it."""
        return any(method == "mean_drop" for _, method in self.canary_checks)

    @property
    def numeric(self) -> bool:
        return self.kind == Kind.NUMERIC

    @property
    def exposed(self) -> dict[str, str]:
        """The series a scrape shows for this signal: name → "bucket", "sum" or "count"."""
        if self.numeric:
            return {f"{self.metric}_bucket": "bucket", f"{self.metric}_sum": "sum"}
        return {f"{self.metric}_total": "count"}

    def bin_label(self, value: float) -> str:
        """The 'le' label of the bucket a value falls in — the label Prometheus exposes for it."""
        for edge in self.edges:
            if value <= edge:
                return floatToGoString(edge)
        return "+Inf"


def share_of(signal: Signal, bins: dict[str, float]) -> tuple[float, float]:
    """(observations in the signal's Share, all observations) of {bucket 'le' label: count} — a window's,
    a baseline's or a sum of them."""
    assert signal.share is not None
    total = float(sum(bins.values()))
    inside = sum(v for le, v in bins.items() if le != "+Inf" and float(le) <= signal.share.upto)
    return float(inside), total


def observations(value: object) -> list:
    """A signal's value for one answer as the observations it makes: a list (one per box) as it is, a
    single value as one."""
    return list(value) if isinstance(value, list | tuple) else [value]


def one_value(value: object) -> float | str | None:
    """One value per answer (what a stored input is ranked by): a list's mean, or its most frequent
    category; None for an empty list."""
    if not isinstance(value, list | tuple):
        return value  # type: ignore[return-value]
    if not value:
        return None
    if all(isinstance(v, str) for v in value):
        return max(set(value), key=value.count)
    return sum(float(v) for v in value) / len(value)
