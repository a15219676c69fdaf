"""Drift scores on binned counts: pure functions, no I/O. Fixed-edge histograms add up, so a window of
any length is a sum of per-minute counts and scoring costs the same whatever the traffic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from .choices import Verdict

EPS = 1e-6  # stands in for an empty bin in the log-ratio scores


@dataclass(frozen=True)
class Score:
    method: str
    value: float  # the statistic (distance, divergence, drop)
    p_value: float | None  # where the method has one
    threshold: float  # the value at or above which the method calls drift
    n_ref: int
    n_cur: int
    drift: bool | None  # None: not enough data for a verdict
    detail: dict

    @property
    def verdict(self) -> str:
        return {True: Verdict.DRIFT, False: Verdict.OK, None: Verdict.NOT_ENOUGH_DATA}[self.drift]


def le_value(label: str) -> float:
    """The upper edge a Prometheus 'le' label names."""
    return float("inf") if label == "+Inf" else float(label)


def aligned(
    ref_bins: dict[str, float], cur_bins: dict[str, float], *, numeric: bool
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Two {label: count} maps as arrays over one shared label order (by upper edge when numeric)."""
    labels = sorted(set(ref_bins) | set(cur_bins), key=le_value if numeric else str)
    return (
        labels,
        np.array([ref_bins.get(k, 0.0) for k in labels]),
        np.array([cur_bins.get(k, 0.0) for k in labels]),
    )


def edges_for(labels: list[str]) -> np.ndarray:
    """Bin edges for labels sorted by upper edge; the open +Inf bin gets a finite stand-in."""
    uppers = [le_value(le) for le in labels if le != "+Inf"]
    edges = [0.0, *uppers]
    if "+Inf" in labels:
        edges.append((uppers[-1] if uppers else 1.0) * 1.25)
    return np.array(edges)


def exact_mean_var(histogram: dict[str, Any], counts: ArrayLike, edges: ArrayLike) -> tuple[float, float]:
    """Mean from the histogram's exact sum of values; variance from its bins (no exact square sum exists)."""
    return histogram["sum"] / histogram["total"], mean_from_bins(counts, edges)[1]


def _probs(counts: ArrayLike) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total > 0 else counts


def _smoothed(counts: ArrayLike) -> np.ndarray:
    p = _probs(counts)
    p = np.where(p <= 0, EPS, p)
    return p / p.sum()


def psi(ref: ArrayLike, cur: ArrayLike) -> float:
    """Population stability index: sum (cur - ref) * ln(cur / ref), empty bins smoothed."""
    p, q = _smoothed(ref), _smoothed(cur)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(ref: ArrayLike, cur: ArrayLike) -> float:
    """Jensen-Shannon divergence in bits, in [0, 1]."""
    p, q = _probs(ref), _probs(cur)
    m = (p + q) / 2
    return float((np.sum(special.rel_entr(p, m)) + np.sum(special.rel_entr(q, m))) / 2 / np.log(2))


def hellinger(ref: ArrayLike, cur: ArrayLike) -> float:
    """Hellinger distance in [0, 1]."""
    return float(np.sqrt(0.5 * np.sum((np.sqrt(_probs(ref)) - np.sqrt(_probs(cur))) ** 2)))


def l_infinity(ref: ArrayLike, cur: ArrayLike) -> float:
    """Largest change in any one category's share."""
    return float(np.max(np.abs(_probs(ref) - _probs(cur))))


def ks_binned(ref: ArrayLike, cur: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov on binned counts: the largest CDF gap at the bin edges, with the
    asymptotic p-value for the effective sample size. Binning can only hide a gap, never invent one."""
    n1, n2 = float(np.sum(ref)), float(np.sum(cur))
    d = float(np.max(np.abs(np.cumsum(_probs(ref)) - np.cumsum(_probs(cur)))))
    effective = n1 * n2 / (n1 + n2)
    return d, float(stats.kstwobign.sf(d * np.sqrt(effective)))


def wasserstein_binned(ref: ArrayLike, cur: ArrayLike, edges: ArrayLike) -> float:
    """Earth mover's distance between the binned distributions, in the signal's units: the area between
    the CDFs, with each bin's mass at its centre (edges has one more entry than the counts)."""
    edges = np.asarray(edges, dtype=float)
    widths = np.diff(edges)
    gap = np.abs(np.cumsum(_probs(ref)) - np.cumsum(_probs(cur)))[:-1]
    centres = (edges[:-1] + edges[1:]) / 2
    return float(np.sum(gap * np.diff(centres))) if len(widths) > 1 else 0.0


def chi_square(ref: ArrayLike, cur: ArrayLike) -> tuple[float, float, list[int]]:
    """Chi-square test of homogeneity on a 2×k table (categories empty in both are dropped). Also
    returns the categories present now that the reference never saw."""
    ref, cur = np.asarray(ref, dtype=float), np.asarray(cur, dtype=float)
    keep = (ref + cur) > 0
    new = [int(i) for i in np.flatnonzero((ref == 0) & (cur > 0))]
    if keep.sum() < 2 or ref.sum() == 0 or cur.sum() == 0:
        return 0.0, 1.0, new  # nothing to compare: an empty side is "not enough data", not drift
    result = stats.chi2_contingency(np.vstack([ref[keep], cur[keep]]), correction=False)
    return float(result.statistic), float(result.pvalue), new


def mean_from_bins(counts: ArrayLike, edges: ArrayLike) -> tuple[float, float]:
    """Mean and variance with each bin's mass at its centre (used when no exact sum is known)."""
    edges = np.asarray(edges, dtype=float)
    centres = (edges[:-1] + edges[1:]) / 2
    p = _probs(counts)
    mean = float(np.sum(p * centres))
    return mean, float(np.sum(p * (centres - mean) ** 2))


def mean_drop_z(
    mean_ref: float, var_ref: float, n_ref: float, mean_cur: float, var_cur: float, n_cur: float
) -> tuple[float, float]:
    """One-sided z-test that the current mean is lower; returns (drop, p-value)."""
    se = np.sqrt(var_ref / max(n_ref, 1) + var_cur / max(n_cur, 1))
    drop = mean_ref - mean_cur
    if se == 0:
        return float(drop), 0.0 if drop > 0 else 1.0
    return float(drop), float(stats.norm.sf(drop / se))


def share_increase_z(k_ref: float, n_ref: float, k_cur: float, n_cur: float) -> tuple[float, float]:
    """One-sided two-proportion z-test that a share (e.g. low-confidence answers) rose."""
    p_ref, p_cur = k_ref / max(n_ref, 1), k_cur / max(n_cur, 1)
    pooled = (k_ref + k_cur) / max(n_ref + n_cur, 1)
    se = np.sqrt(pooled * (1 - pooled) * (1 / max(n_ref, 1) + 1 / max(n_cur, 1)))
    rise = p_cur - p_ref
    if se == 0:
        return float(rise), 0.0 if rise > 0 else 1.0
    return float(rise), float(stats.norm.sf(rise / se))


# --- verdicts ---------------------------------------------------------------------------------

# Default thresholds. Tests with a p-value call drift only when the change is both significant and
# material, so a large window does not alarm on a negligible shift. tests/monitoring/test_drift.py
# simulates no-drift windows at MIN_SAMPLES and checks the false-alarm rate stays below 1 %.
MIN_SAMPLES = 200  # the window being judged
MIN_REFERENCE = (
    50  # a baseline (e.g. the 72 reference images) may be smaller; the tests' p-values account for it
)
ALPHA = 0.005  # with the effect-size gates this keeps false alarms well under 1 % (simulated in the tests)
THRESHOLDS: dict[str, float | None] = {
    "psi": 0.2,
    "jensen_shannon": 0.1,
    "hellinger": 0.2,
    "ks": 0.1,
    "wasserstein": None,  # in the signal's units: set per rule
    "chi_square": 0.1,  # L-infinity effect size that must accompany a significant chi-square
    "l_infinity": 0.15,
    "mean_drop": 0.05,
    "low_share": 0.1,
}


def score(
    method: str,
    ref_counts: ArrayLike,
    cur_counts: ArrayLike,
    *,
    edges: ArrayLike | None = None,
    threshold: float | None = None,
    **extra: Any,
) -> Score:
    """One drift score with its verdict; windows below MIN_SAMPLES (or extra['min_samples']) get none."""
    ref, cur = np.asarray(ref_counts, dtype=float), np.asarray(cur_counts, dtype=float)
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    threshold = THRESHOLDS.get(method) if threshold is None else threshold
    min_samples = extra.pop("min_samples", MIN_SAMPLES)
    min_reference = extra.pop("min_reference", min(MIN_REFERENCE, min_samples))
    alpha = extra.pop("alpha", ALPHA)
    p_value, detail = None, {}
    if method in ("psi", "jensen_shannon", "hellinger"):
        # The distances have no p-value of their own and a small-sample bias that grows with the
        # number of bins; the chi-square test of the same two histograms supplies the significance.
        value = {"psi": psi, "jensen_shannon": jensen_shannon, "hellinger": hellinger}[method](ref, cur)
        _, p_value, _ = chi_square(ref, cur)
    elif method == "l_infinity":
        value = l_infinity(ref, cur)
    elif method == "ks":
        value, p_value = ks_binned(ref, cur)
    elif method == "wasserstein":
        if edges is None or threshold is None:
            raise ValueError("wasserstein needs the bin edges and a threshold in the signal's units")
        value = wasserstein_binned(ref, cur, edges)
    elif method == "chi_square":
        statistic, p_value, new = chi_square(ref, cur)
        value = l_infinity(ref, cur)
        detail = {"chi2": statistic, "new_categories": new}
    elif method in ("mean_drop", "low_share"):
        if edges is None:
            raise ValueError(f"{method} needs the bin edges")
        if method == "mean_drop":
            m_ref, v_ref = extra.get("ref_mean_var") or mean_from_bins(ref, edges)
            m_cur, v_cur = extra.get("cur_mean_var") or mean_from_bins(cur, edges)
            value, p_value = mean_drop_z(m_ref, v_ref, n_ref, m_cur, v_cur, n_cur)
            detail = {"mean_ref": m_ref, "mean_cur": m_cur}
        else:
            below = extra.get("below", 0.5)
            cut = int(np.searchsorted(np.asarray(edges)[1:], below, side="right"))
            k_ref, k_cur = ref[:cut].sum(), cur[:cut].sum()
            value, p_value = share_increase_z(k_ref, n_ref, k_cur, n_cur)
            detail = {"share_ref": k_ref / max(n_ref, 1), "share_cur": k_cur / max(n_cur, 1), "below": below}
    else:
        raise ValueError(f"unknown drift method {method!r}")
    if threshold is None:
        raise ValueError(f"{method} needs a threshold")
    if n_cur < min_samples or n_ref < min_reference:
        drift = None
    else:
        drift = value >= threshold and (p_value is None or p_value < alpha)
    return Score(method, float(value), p_value, float(threshold), n_ref, n_cur, drift, detail)
