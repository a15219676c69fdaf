"""Plotly figures for the monitoring pages, built from collected windows (no I/O beyond the ORM)."""

from __future__ import annotations

from collections import defaultdict

import plotly.graph_objects as go
from django.utils.safestring import mark_safe

from registry.choices import PRODUCTION_CHANGING, Action, Stage
from serving import signals
from serving.routing import PINNED

from .drift import le_value
from .models import MetricWindow

COLOURS = {Stage.PRODUCTION: "#127a43", Stage.CANARY: "#b25e09", PINNED: "#6b7685"}
MARKED = (*PRODUCTION_CHANGING, Action.CANARY_START, Action.CANARY_ABORT)  # drawn as lines on time charts
LAYOUT = dict(
    margin=dict(l=50, r=20, t=40, b=40), height=320, template="plotly_white", legend=dict(orientation="h")
)


def _html(fig: go.Figure) -> str:
    """The figure as JSON for a `<script type="application/json">` block (static/js/charts.js draws it):
    no inline script, so the Content-Security-Policy needs none. <, > and & are escaped as in Django's
    json_script, so a label can never close the block."""
    text = fig.to_json().translate({ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"})
    return mark_safe(text)  # noqa: S308 - escaped above


def _series(windows, signal):
    by_key = defaultdict(list)
    for w in windows:
        if w.signal == signal:
            by_key[(w.version, w.stage)].append(w)
    return by_key


def histogram_overlay(windows: list[MetricWindow], signal: str, title: str) -> str | None:
    """Share of observations per bin, one trace per {version, stage}, summed over the windows."""
    fig = go.Figure()
    for (version, stage), rows in sorted(_series(windows, signal).items()):
        counts: dict[str, float] = defaultdict(float)
        for row in rows:
            for label, value in row.bins.items():
                counts[label] += value
        total = sum(counts.values())
        if not total:
            continue
        labels = sorted(counts, key=le_value)
        fig.add_bar(
            x=[f"≤{le}" for le in labels],
            y=[counts[le] / total for le in labels],
            name=f"v{version} {stage} (n={int(total)})",
            marker_color=COLOURS.get(stage),
            opacity=0.75,
        )
    if not fig.data:
        return None
    fig.update_layout(title=title, barmode="group", yaxis_tickformat=".0%", **LAYOUT)
    return _html(fig)


def mean_over_time(
    windows, signal: str, title: str, *, events=(), band: tuple[float, float] | None = None
) -> str | None:
    fig = go.Figure()
    for (version, stage), rows in sorted(_series(windows, signal).items()):
        rows = sorted(rows, key=lambda w: w.end)
        points = [(w.end, w.value_sum / w.total) for w in rows if w.total and w.value_sum is not None]
        if points:
            fig.add_scatter(
                x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                name=f"v{version} {stage}", line_color=COLOURS.get(stage),
            )  # fmt: skip
    if not fig.data:
        return None
    if band is not None:
        fig.add_hrect(y0=band[0], y1=band[1], fillcolor="#e8f5ec", opacity=0.5, line_width=0)
    for event in events:
        if event.action in MARKED:
            fig.add_vline(x=event.created_at, line_dash="dot", line_color="#6b7685")
            fig.add_annotation(
                x=event.created_at,
                y=1,
                yref="paper",
                text=f"{event.get_action_display()} v{event.version}",
                showarrow=False,
                font_size=10,
            )
    fig.update_layout(title=title, **LAYOUT)
    return _html(fig)


def p95_over_time(windows, title: str) -> str | None:
    fig = go.Figure()
    for (version, stage), rows in sorted(_series(windows, signals.LATENCY.name).items()):
        xs, ys = [], []
        for w in sorted(rows, key=lambda w: w.end):
            labels = sorted(w.bins, key=le_value)
            running, target = 0.0, 0.95 * w.total
            for le in labels:
                running += w.bins[le]
                if running >= target:
                    xs.append(w.end)
                    ys.append(le_value(le) * 1000 if le != "+Inf" else None)
                    break
        if xs:
            fig.add_scatter(
                x=xs, y=ys, mode="lines+markers", name=f"v{version} {stage}", line_color=COLOURS.get(stage)
            )
    if not fig.data:
        return None
    fig.update_layout(title=title, yaxis_title="ms (bucket upper edge)", **LAYOUT)
    return _html(fig)


def category_mix(windows, signal: str, title: str) -> str | None:
    counts: dict[str, float] = defaultdict(float)
    per_stage: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for w in windows:
        if w.signal != signal:
            continue
        for label, value in w.bins.items():
            counts[label] += value
            per_stage[f"v{w.version} {w.stage}"][label] += value
    if not counts:
        return None
    fig = go.Figure()
    for label in sorted(counts, key=lambda label: counts[label], reverse=True)[:12]:
        fig.add_bar(
            x=list(per_stage),
            y=[per_stage[s][label] / max(sum(per_stage[s].values()), 1) for s in per_stage],
            name=label,
        )
    fig.update_layout(title=title, barmode="stack", yaxis_tickformat=".0%", **LAYOUT)
    return _html(fig)


def _compare(title: str, *traces: tuple[str, dict, str]) -> str:
    """Share per bin of several histograms over one shared, ordered set of bins."""
    labels = sorted({k for _, counts, _ in traces for k in counts}, key=le_value)
    fig = go.Figure()
    for name, counts, colour in traces:
        total = sum(counts.values()) or 1
        fig.add_bar(
            x=[f"≤{k}" for k in labels],
            y=[counts.get(k, 0) / total for k in labels],
            name=name,
            marker_color=colour,
        )
    fig.update_layout(title=title, barmode="group", yaxis_tickformat=".0%", **LAYOUT)
    return _html(fig)


def _production_counts(windows, signal: str, version: int, start=None, end=None) -> dict[str, float]:
    counts: dict[str, float] = defaultdict(float)
    for w in windows:
        if w.signal == signal and w.version == version and w.stage == Stage.PRODUCTION:
            if start is None or start < w.end <= end:
                for label, value in w.bins.items():
                    counts[label] += value
    return counts


def baseline_overlay(score, windows) -> str | None:
    """The baseline the alert compared with, against the scored window."""
    reference = score.baseline.signals.get(score.signal)
    if not reference or score.signal not in signals.NUMERIC:
        return None
    current = _production_counts(windows, score.signal, score.version, score.window_start, score.window_end)
    return _compare(
        f"{score.signal}: baseline vs scored window ({score.method}={score.value:.3g})",
        (f"baseline ({score.baseline.source}, n={int(reference['total'])})", reference["bins"], "#6b7685"),
        (f"scored window (n={int(sum(current.values()))})", current, "#b42318"),
    )


def reference_overlay(baseline, windows, signal: str, title: str) -> str | None:
    """The production version's baseline against what production saw in the page's window."""
    reference = baseline.signals.get(signal) if baseline else None
    current = _production_counts(windows, signal, baseline.version) if baseline else {}
    if not reference or not current:
        return None
    return _compare(
        title,
        (
            f"baseline v{baseline.version} ({baseline.source}, n={int(reference['total'])})",
            reference["bins"],
            "#6b7685",
        ),
        (f"production now (n={int(sum(current.values()))})", current, "#127a43"),
    )


def category_mix_over_time(windows, signal: str, title: str, *, stage: str = Stage.PRODUCTION) -> str | None:
    """Share of each category per collection window (the top categories; the rest as 'other')."""
    per_end: dict = defaultdict(lambda: defaultdict(float))
    totals: dict[str, float] = defaultdict(float)
    for w in windows:
        if w.signal == signal and w.stage == stage:
            for label, value in w.bins.items():
                per_end[w.end][label] += value
                totals[label] += value
    if not per_end:
        return None
    top = sorted(totals, key=lambda label: totals[label], reverse=True)[:8]
    ends = sorted(per_end)
    fig = go.Figure()
    for label in [*top, "other"]:
        ys = []
        for end in ends:
            counts = per_end[end]
            total = sum(counts.values()) or 1
            value = (
                counts.get(label, 0.0)
                if label != "other"
                else sum(v for k, v in counts.items() if k not in top)
            )
            ys.append(value / total)
        if any(ys):
            fig.add_scatter(x=ends, y=ys, name=label, mode="lines", stackgroup="mix")
    fig.update_layout(title=title, yaxis_tickformat=".0%", **LAYOUT)
    return _html(fig)
