"""Reads of collected metrics."""

from __future__ import annotations

from collections import defaultdict

from .models import MetricWindow


def windows_sum(
    *, model: str, version: int, stage: str, start, end, signal: str | None = None
) -> dict[str, dict]:
    """Signal → {"bins": {label: count}, "total": n, "sum": sum of values}, over windows ending in (start, end].
    Fixed-edge histograms add up, so any span is the sum of its windows."""
    out: dict[str, dict] = defaultdict(lambda: {"bins": defaultdict(float), "total": 0.0, "sum": 0.0})
    rows = MetricWindow.objects.filter(model=model, version=version, stage=stage, end__gt=start, end__lte=end)
    if signal is not None:
        rows = rows.filter(signal=signal)
    for row in rows:
        entry = out[row.signal]
        for label, count in row.bins.items():
            entry["bins"][label] += count
        entry["total"] += row.total
        entry["sum"] += row.value_sum or 0.0
    return {name: {**entry, "bins": dict(entry["bins"])} for name, entry in out.items()}
