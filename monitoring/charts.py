"""Plotly figures for the monitoring pages, built from collected windows (no I/O beyond the ORM)."""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import plotly.graph_objects as go
from django.conf import settings
from django.utils.safestring import mark_safe

from modelspec.signals import share_of
from registry.choices import PRODUCTION_CHANGING, Action, Stage
from serving import signal_catalogue as signals
from serving.routing import PINNED

from .drift import le_value
from .models import MetricWindow

# One colour per version on every chart of a model (by version number, so v1 is the same colour on the
# confidence histogram, the mean over time and the latency chart); the stage is in the name and the line
# style. Okabe–Ito and Tableau hues: distinct for colour-blind readers, none of them the baseline's grey.
VERSION_PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#8c564b", "#f0e442",
                   "#332288", "#882255", "#117733", "#44aa99")  # fmt: skip
# Categories (input shapes, predicted classes): each its own colour, picked by its name (category_colours).
CATEGORY_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                    "#9c755f", "#bab0ac", "#1f77b4", "#2ca02c", "#9467bd")  # fmt: skip
OTHER = "#c7ccd3"
DASH = {Stage.PRODUCTION: "solid", Stage.CANARY: "dash", PINNED: "dot"}
MARKED = (*PRODUCTION_CHANGING, Action.CANARY_START, Action.CANARY_ABORT)  # drawn as lines on time charts
MARKER_WORDS = {
    Action.PRODUCTION_APPROVE: "production",
    Action.ROLLBACK: "rollback to",
    Action.CANARY_START: "canary",
    Action.CANARY_ABORT: "canary aborted",
}
LAYOUT = dict(
    # t: the band the toolbar (top right) sits in, above the plot; a title wrapped to the room left of the
    # toolbar (static/js/charts.js) pushes it down (automargin) rather than running under the toolbar
    margin=dict(l=50, r=20, t=36, b=30),
    height=360,
    template="plotly_white",
    title=dict(
        x=0, xref="container", xanchor="left", y=1, yref="paper", yanchor="bottom",
        pad=dict(l=10, b=10), automargin=True,
    ),
    # below everything, at the foot of the chart (the margin grows to fit it): never over the plot, the
    # title or the axis' tick labels and date line, however many rows it wraps into on a phone
    legend=dict(orientation="h", x=0, xanchor="left", y=0, yref="container", yanchor="bottom"),
    autosize=True,  # the width is the card's (static/js/charts.js keeps it so)
    xaxis=dict(automargin=True),
    yaxis=dict(automargin=True),
)  # fmt: skip


def version_colour(version: int) -> str:
    return VERSION_PALETTE[(version - 1) % len(VERSION_PALETTE)]


def category_colours(counts: dict[str, float]) -> dict[str, str]:
    """A colour per category, where the category's own name picks it (its CRC-32 into CATEGORY_PALETTE):
    the same category is the same colour on every chart, every model's page and every refresh, whatever
    the counts. Two categories picking one colour: the more frequent keeps it, the other takes the next
    free one, so the thirteen most frequent never share one. "other" is grey."""
    colours: dict[str, str] = {"other": OTHER}
    free = list(range(len(CATEGORY_PALETTE)))
    for label in sorted((label for label in counts if label != "other"), key=lambda k: (-counts[k], k)):
        if not free:
            free = list(range(len(CATEGORY_PALETTE)))  # more categories than colours: reuse them
        wanted = zlib.crc32(label.encode()) % len(CATEGORY_PALETTE)
        taken = min(free, key=lambda i: (i - wanted) % len(CATEGORY_PALETTE))
        free.remove(taken)
        colours[label] = CATEGORY_PALETTE[taken]
    return colours


def _category_colours(windows, signal: str) -> dict[str, str]:
    """The colours of a signal's categories on a page: counted over all its windows, so one category is
    one colour on every chart of it (the mix by version and the mix over time)."""
    counts: dict[str, float] = defaultdict(float)
    for w in windows:
        if w.signal == signal:
            for label, value in w.bins.items():
                counts[label] += value
    return category_colours(counts)


def _time_axis(fig: go.Figure, times, events=()) -> None:
    """A time axis a person can read, with the promotion markers of `events` on it: with one window (or a
    few seconds of them) plotly would tick in milliseconds; show the surrounding minutes instead."""
    marked = [e for e in events if e.action in MARKED]
    times = sorted([*times, *(e.created_at for e in marked)])
    if not times:
        return
    start, end = times[0], times[-1]
    if (end - start).total_seconds() < 300:
        start, end = start - timedelta(minutes=5), end + timedelta(minutes=5)
        fig.update_xaxes(range=[start, end])
    _markers(fig, marked, span=end - start)


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


def _counted(signal: str, total: float) -> str:
    """How many observations, saying "boxes" for a signal observed once per box."""
    found = signals.SIGNALS.get(signal)
    return f"{int(total)} boxes" if found is not None and found.per == "box" else f"{int(total)}"


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
            name=f"v{version} {stage} (n={_counted(signal, total)})",
            marker_color=version_colour(version),
            marker_pattern_shape="" if stage == Stage.PRODUCTION else "/",
            opacity=0.8,
        )
    if not fig.data:
        return None
    fig.update_layout(LAYOUT, title_text=title, barmode="group", yaxis_tickformat=".0%")
    return _html(fig)


def mean_over_time(
    windows, signal: str, title: str, *, events=(), band: tuple[float, float] | None = None
) -> str | None:
    fig = go.Figure()
    times: list = []
    for (version, stage), rows in sorted(_series(windows, signal).items()):
        rows = sorted(rows, key=lambda w: w.end)
        points = [(w.end, w.value_sum / w.total) for w in rows if w.total and w.value_sum is not None]
        if points:
            times += [p[0] for p in points]
            fig.add_scatter(
                x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                name=f"v{version} {stage}", line_color=version_colour(version), line_dash=DASH.get(stage, "solid"),
            )  # fmt: skip
    if not fig.data:
        return None
    if band is not None:
        fig.add_hrect(y0=band[0], y1=band[1], fillcolor="#e8f5ec", opacity=0.5, line_width=0)
    _time_axis(fig, times, events)
    fig.update_layout(LAYOUT, title_text=title)
    return _html(fig)


# An upright marker label is a line of 10 px text, about 14 px wide: 6 % of a phone's plot (about 280 px of
# the axis' span). Markers closer than that share one label, so labels never stack on top of each other.
MARKER_ROOM = 0.06


def _markers(fig: go.Figure, events, *, span: timedelta) -> None:
    """Promotion markers: a dotted line per event, and a label upright for each run of events closer
    together than a label's width (MARKER_ROOM of the axis), just after the run's last line: what that
    last event did, "(+2)" for the earlier ones of the run. Every event of the run, with times, on hover.
    Labels of successive runs are at least MARKER_ROOM apart, so they never stack."""
    runs: list[list] = []
    for event in sorted(events, key=lambda e: e.created_at):
        fig.add_vline(x=event.created_at, line_dash="dot", line_color="#6b7685")
        if runs and event.created_at - runs[-1][-1].created_at < MARKER_ROOM * span:
            runs[-1].append(event)
        else:
            runs.append([event])
    for run in runs:
        last = run[-1]
        fig.add_annotation(
            x=last.created_at,
            y=1,
            yref="paper",
            text=f"{MARKER_WORDS.get(last.action, last.action)} v{last.version}"
            + (f" (+{len(run) - 1})" if len(run) > 1 else ""),
            hovertext="<br>".join(
                f"{e.created_at:%H:%M:%S} {e.get_action_display()} v{e.version}" for e in run
            ),
            textangle=-90,
            xanchor="left",  # after the run's lines, not across them; the first marker's is off the y axis' labels
            yanchor="top",
            showarrow=False,
            font=dict(size=10, color="#4b5563"),
        )


def p95_over_time(windows, title: str) -> str | None:
    fig = go.Figure()
    times: list = []
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
            times += xs
            fig.add_scatter(
                x=xs, y=ys, mode="lines+markers", name=f"v{version} {stage}",
                line_color=version_colour(version), line_dash=DASH.get(stage, "solid"),
            )  # fmt: skip
    if not fig.data:
        return None
    _time_axis(fig, times)
    fig.update_layout(LAYOUT, title_text=title)
    fig.update_yaxes(title_text="ms (bucket upper edge)")
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
    shown = sorted(counts, key=lambda label: counts[label], reverse=True)[:12]
    colours = _category_colours(windows, signal)
    for label in shown:
        fig.add_bar(
            x=list(per_stage),
            y=[per_stage[s][label] / max(sum(per_stage[s].values()), 1) for s in per_stage],
            name=label,
            marker_color=colours[label],
        )
    fig.update_layout(LAYOUT, title_text=title, barmode="stack", yaxis_tickformat=".0%")
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
    fig.update_layout(LAYOUT, title_text=title, barmode="group", yaxis_tickformat=".0%")
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
            f"baseline v{baseline.version} ({baseline.source}, n={_counted(signal, reference['total'])})",
            reference["bins"],
            "#6b7685",
        ),
        (
            f"production now (n={_counted(signal, sum(current.values()))})",
            current,
            version_colour(baseline.version),
        ),
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
    colours = _category_colours(windows, signal)
    gaps = [(b - a).total_seconds() for a, b in zip(ends, ends[1:], strict=False) if b > a]
    bar_ms = 0.8 * 1000 * min([*gaps, settings.MONITORING_COLLECT_SECONDS])  # a bar as wide as its window
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
        if any(ys):  # stacked bars: a single window shows too (a stacked area of one point is empty)
            fig.add_bar(x=ends, y=ys, name=label, marker_color=colours[label], width=bar_ms)
    _time_axis(fig, ends)
    fig.update_layout(LAYOUT, title_text=title, barmode="stack", yaxis_tickformat=".0%")
    return _html(fig)


def accuracy_over_time(performance, title: str, events=()) -> str | None:
    """Per version: the real accuracy of each time bucket with enough labels (markers, its 95 % interval
    as error bars, labels counted on hover) and the estimate from confidences (dashed, every bucket with
    predictions) — side by side, so where both exist the estimate's error is plain to see."""
    from .ground_truth import MIN_LABELS, wilson

    fig = go.Figure()
    times: list = []
    for found in performance:
        colour = version_colour(found.version)
        estimated = [p for p in found.points if p.estimated is not None]
        if estimated:
            times += [p.end for p in estimated]
            fig.add_scatter(
                x=[p.end for p in estimated], y=[p.estimated for p in estimated], mode="lines+markers",
                name=f"v{found.version} estimated", line=dict(color=colour, dash="dash"),
                marker=dict(symbol="circle-open", size=7),  # a single bucket is a point, not an empty line
                customdata=[[p.predictions, p.calibration_labels] for p in estimated],
                hovertemplate="%{y:.1%} estimated from %{customdata[0]} predictions"
                " (calibrated on %{customdata[1]} earlier labels)<extra></extra>",
            )  # fmt: skip
        real = [p for p in found.points if p.accuracy is not None]
        if real:
            times += [p.end for p in real]
            bounds = [wilson(p.correct, p.labelled) for p in real]
            fig.add_scatter(
                x=[p.end for p in real], y=[p.accuracy for p in real], mode="lines+markers",
                name=f"v{found.version} labelled", line=dict(color=colour),
                error_y=dict(
                    type="data", symmetric=False,
                    array=[hi - p.accuracy for p, (_, hi) in zip(real, bounds, strict=True)],
                    arrayminus=[p.accuracy - lo for p, (lo, _) in zip(real, bounds, strict=True)],
                ),
                customdata=[[p.labelled, p.error * 100 if p.error is not None else None] for p in real],
                hovertemplate="%{y:.1%} of %{customdata[0]} labelled (estimate off by %{customdata[1]:+.1f} pt)"
                "<extra></extra>",
            )  # fmt: skip
        times += _too_few_labels(
            fig, found.version,
            [(p.end, f"{p.labelled} labels: too few to show an accuracy ({MIN_LABELS} needed)")
             for p in found.points if p.labelled and p.accuracy is None],
        )  # fmt: skip
    if not fig.data:
        return None
    _time_axis(fig, times, events)
    fig.update_layout(LAYOUT, title_text=title)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return _html(fig)


# a detector's scores: one line style and marker per score, the version's colour
DETECTOR_SCORES = (
    ("precision", "precision", "solid", "circle"),
    ("recall", "recall", "dot", "square"),
    ("map50", "mAP@0.5", "dash", "diamond"),
    ("map50_95", "mAP@0.5:0.95", "dashdot", "triangle-up"),
)


def _too_few_labels(fig: go.Figure, version: int, buckets: list[tuple]) -> list:
    """Buckets with labels but too few to score, as grey crosses on the axis named so in the legend and on
    hover — not left out, which would read as "no labels". Their times."""
    if buckets:
        fig.add_scatter(
            x=[end for end, _ in buckets], y=[0] * len(buckets), mode="markers",
            name=f"v{version}: too few labels, not scored",
            marker=dict(symbol="x", size=9, color=OTHER, line=dict(color=version_colour(version), width=1)),
            hovertext=[note for _, note in buckets], hoverinfo="text",
        )  # fmt: skip
    return [end for end, _ in buckets]


def detector_accuracy_over_time(performance, title: str, events=()) -> str | None:
    """Per detector version and time bucket with enough labelled images: precision, recall, mAP@0.5 and
    mAP@0.5:0.95 (images and boxes on hover). Buckets with labels but too few to score are drawn as grey
    crosses on the axis, named so in the legend and on hover — not left out, which would read as "no
    labels"."""
    fig = go.Figure()
    times: list = []
    for found in performance:
        colour = version_colour(found.version)
        for key, name, dash, symbol in DETECTOR_SCORES:
            points = [(p, p.score(key)) for p in found.points if p.score(key) is not None]
            if not points:
                continue
            times += [p.end for p, _ in points]
            fig.add_scatter(
                x=[p.end for p, _ in points], y=[value for _, value in points], mode="lines+markers",
                name=f"v{found.version} {name}", line=dict(color=colour, dash=dash), marker=dict(symbol=symbol, size=7),
                customdata=[[p.images, p.true_boxes, p.predicted_boxes] for p, _ in points],
                hovertemplate=f"{name} %{{y:.3f}} on %{{customdata[0]}} labelled images"
                " (%{customdata[1]} true boxes, %{customdata[2]} answered)<extra></extra>",
            )  # fmt: skip
        times += _too_few_labels(fig, found.version, [(p.end, p.note) for p in found.too_few])
    if not fig.data:
        return None
    _time_axis(fig, times, events)
    fig.update_layout(LAYOUT, title_text=title)
    fig.update_yaxes(range=[-0.03, 1.03])
    return _html(fig)


def share_over_time(windows, signal: str, *, events=()) -> str | None:
    """A numeric signal's Share (a detector's images with no box) per window, one line per {version,
    stage}: the share, with what it counts on hover."""
    share = signals.SIGNALS[signal].share
    if share is None:
        return None
    fig = go.Figure()
    times: list = []
    for (version, stage), rows in sorted(_series(windows, signal).items()):
        points = [
            (w.end, *share_of(signals.SIGNALS[signal], w.bins)) for w in sorted(rows, key=lambda w: w.end)
        ]
        points = [(end, k, n) for end, k, n in points if n]
        if points:
            times += [p[0] for p in points]
            fig.add_scatter(
                x=[p[0] for p in points], y=[k / n for _, k, n in points], mode="lines+markers",
                name=f"v{version} {stage}", line_color=version_colour(version), line_dash=DASH.get(stage, "solid"),
                customdata=[[int(k), int(n)] for _, k, n in points],
                hovertemplate="%{y:.1%}: %{customdata[0]} of %{customdata[1]}<extra></extra>",
            )  # fmt: skip
    if not fig.data:
        return None
    _time_axis(fig, times, events)
    fig.update_layout(LAYOUT, title_text=f"{share.title} per window")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return _html(fig)


@dataclass(frozen=True)
class Cell:
    share: float
    shade: int  # 0–100: the cell's share against the grid's largest (how much of its stage's colour)

    @property
    def percent(self) -> float:
        return 100 * self.share


@dataclass(frozen=True)
class HeatMap:
    """A categorical signal over a grid of the image (a detector's box centres) for one {version, stage}
    or a baseline: each cell's share of the observations, rows from the top."""

    name: str
    stage: str  # production / canary / … or "baseline": the colour it is drawn in
    total: int
    rows: list[list[Cell]]


def _heat_map(name: str, stage: str, counts: dict[str, float], size: int) -> HeatMap | None:
    total = sum(counts.values())
    if not total:
        return None
    shares = [[counts.get(f"{col}-{row}", 0.0) / total for col in range(size)] for row in range(size)]
    top = max(max(row) for row in shares) or 1.0
    rows = [[Cell(share, round(100 * share / top)) for share in row] for row in shares]
    return HeatMap(name, stage, int(total), rows)


def _production_first(item) -> tuple[int, int]:
    """{version, stage} series in the order tables show them: production, the canary, then the rest."""
    (version, stage), _ = item
    return ({Stage.PRODUCTION: 0, Stage.CANARY: 1}.get(stage, 2), -version)


def heat_maps(windows, signal: str, *, baseline=None) -> list[HeatMap]:
    """One heat map per {version, stage} in the windows (production first), and the production version's
    baseline beside them when it has the signal."""
    size = signals.SIGNALS[signal].grid
    found = []
    if baseline is not None and (reference := baseline.signals.get(signal)):
        made = _heat_map(
            f"baseline v{baseline.version} ({baseline.source})", "baseline", reference["bins"], size
        )
        found += [made] if made else []
    for (version, stage), rows in sorted(_series(windows, signal).items(), key=_production_first):
        counts: dict[str, float] = defaultdict(float)
        for row in rows:
            for label, value in row.bins.items():
                counts[label] += value
        made = _heat_map(f"v{version} {stage}", stage, counts, size)
        found += [made] if made else []
    return found


@dataclass(frozen=True)
class ShareRow:
    name: str  # "v1 production"
    inside: int  # observations in the share (images with no detection)
    total: int  # all observations (images answered)
    mean: float | None  # the signal's mean over the span (detections per image)

    @property
    def percent(self) -> float:
        return 100 * self.inside / self.total if self.total else 0.0


def share_rows(windows, signal: str) -> list[ShareRow]:
    """A numeric signal's Share over the whole span, per {version, stage}, with the signal's mean."""
    found = signals.SIGNALS[signal]
    rows = []
    for (version, stage), kept in sorted(_series(windows, signal).items(), key=_production_first):
        counts: dict[str, float] = defaultdict(float)
        for w in kept:
            for label, value in w.bins.items():
                counts[label] += value
        inside, total = share_of(found, counts)
        value_sum = sum(w.value_sum or 0.0 for w in kept)
        if total:
            rows.append(ShareRow(f"v{version} {stage}", int(inside), int(total), value_sum / total))
    return rows
