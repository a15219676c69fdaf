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
