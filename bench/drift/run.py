"""Drift scoring time against the window's size: ours works on bin counts (what Prometheus histograms and our
metric windows hold), so a window of 10^7 predictions costs what one of 10^3 does; scipy's tests on the raw
values grow with them. Same data for both: confidence-like values from two Beta distributions.

    python bench/drift/run.py        # about a minute; self-contained

Writes bench/drift/results.json and prints a Markdown table."""

from __future__ import annotations

import json
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent


def best_of(fn, repeat: int) -> float:
    """The fastest of `repeat` runs, in ms (the machine's noise only adds)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    import django

    django.setup()
    from scipy import stats

    from monitoring import drift
    from serving import signal_catalogue as signals

    edges = np.array([0.0, *signals.CONFIDENCE.edges])
    rng = np.random.default_rng(0)
    rows = []
    for exponent in range(3, 8):
        n = 10**exponent
        ref, cur = rng.beta(5, 2, size=n), rng.beta(4.6, 2, size=n)
        ref_counts, cur_counts = np.histogram(ref, edges)[0], np.histogram(cur, edges)[0]
        repeat = 20 if n <= 10**5 else 3
        score = partial(drift.score, ref_counts=ref_counts, cur_counts=cur_counts)
        row = {
            "n": n,
            "ours_ks_ms": best_of(partial(score, "ks"), 50),
            "ours_psi_ms": best_of(partial(score, "psi"), 50),
            "ours_wasserstein_ms": best_of(partial(score, "wasserstein", edges=edges, threshold=0.05), 50),
            "binning_ms": best_of(partial(np.histogram, cur, edges), repeat),
            "scipy_ks_ms": best_of(partial(stats.ks_2samp, ref, cur), repeat),
            "scipy_wasserstein_ms": best_of(partial(stats.wasserstein_distance, ref, cur), repeat),
            "ks_binned": drift.ks_binned(ref_counts, cur_counts)[0],
            "ks_exact": float(stats.ks_2samp(ref, cur).statistic),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    (HERE / "results.json").write_text(json.dumps(rows, indent=2))
    print("| predictions per window | ours KS / PSI / Wasserstein on bins, ms | scipy ks_2samp / wasserstein on values, ms | "
          "KS binned / exact | binning the values once, ms |")  # fmt: skip
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| 10^{len(str(r['n'])) - 1} | {r['ours_ks_ms']:.3f} / {r['ours_psi_ms']:.3f} / {r['ours_wasserstein_ms']:.3f} | "
              f"{r['scipy_ks_ms']:.2f} / {r['scipy_wasserstein_ms']:.2f} | {r['ks_binned']:.4f} / {r['ks_exact']:.4f} | "
              f"{r['binning_ms']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
