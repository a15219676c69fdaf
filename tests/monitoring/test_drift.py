"""Drift scores against scipy on raw samples, and the false-alarm rate when nothing drifts."""

import numpy as np
import pytest
from scipy import spatial, stats

from monitoring import drift

EDGES = np.linspace(0, 1, 41)


def binned(samples, edges=EDGES):
    return np.histogram(np.clip(samples, edges[0], edges[-1]), bins=edges)[0]


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_ks_binned_is_close_to_scipy_on_raw_samples(rng):
    a, b = rng.beta(5, 2, 3000), rng.beta(4, 2, 2500)
    d, p = drift.ks_binned(binned(a), binned(b))
    raw = stats.ks_2samp(a, b)
    assert d <= raw.statistic + 1e-12  # binning can only hide a gap
    assert d == pytest.approx(raw.statistic, abs=0.02)
    assert p == pytest.approx(stats.kstwobign.sf(raw.statistic * np.sqrt(3000 * 2500 / 5500)), rel=0.5)
    assert p < 1e-6 and raw.pvalue < 1e-6


def test_wasserstein_binned_matches_scipy_within_a_bin_width(rng):
    a, b = rng.beta(5, 2, 4000), rng.beta(3, 3, 4000)
    ours = drift.wasserstein_binned(binned(a), binned(b), EDGES)
    assert ours == pytest.approx(stats.wasserstein_distance(a, b), abs=EDGES[1] - EDGES[0])


def test_jensen_shannon_and_hellinger_match_scipy(rng):
    p, q = binned(rng.beta(5, 2, 5000)), binned(rng.beta(2, 5, 5000))
    assert drift.jensen_shannon(p, q) == pytest.approx(
        spatial.distance.jensenshannon(p, q, base=2) ** 2, rel=1e-9
    )
    pp, qq = p / p.sum(), q / q.sum()
    assert drift.hellinger(p, q) == pytest.approx(
        np.sqrt(np.sum((np.sqrt(pp) - np.sqrt(qq)) ** 2)) / np.sqrt(2)
    )
    assert drift.jensen_shannon(p, p) == pytest.approx(0, abs=1e-12) and 0 < drift.jensen_shannon(p, q) <= 1


def test_psi_by_hand():
    ref, cur = [50, 30, 20], [30, 30, 40]
    expected = sum((c - r) * np.log(c / r) for r, c in zip([0.5, 0.3, 0.2], [0.3, 0.3, 0.4], strict=True))
    assert drift.psi(ref, cur) == pytest.approx(expected)


def test_chi_square_matches_scipy_and_names_new_categories():
    ref, cur = [120, 80, 0, 40], [60, 90, 30, 70]
    statistic, p, new = drift.chi_square(ref, cur)
    expected = stats.chi2_contingency(np.array([ref, cur]), correction=False)
    assert statistic == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)
    assert new == [2]
    assert drift.l_infinity(ref, cur) == pytest.approx(
        max(abs(r / 240 - c / 250) for r, c in zip(ref, cur, strict=True))
    )


def test_mean_drop_z_against_scipy_ttest(rng):
    a, b = rng.normal(0.8, 0.1, 2000), rng.normal(0.78, 0.1, 2000)
    drop, p = drift.mean_drop_z(a.mean(), a.var(ddof=1), 2000, b.mean(), b.var(ddof=1), 2000)
    t = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    assert drop == pytest.approx(a.mean() - b.mean())
    assert p == pytest.approx(t.pvalue, rel=0.05)


def test_low_confidence_share_rise(rng):
    edges = np.array([0, 0.25, 0.5, 0.75, 1.0])
    result = drift.score("low_share", [10, 20, 300, 670], [60, 90, 300, 550], edges=edges, below=0.5)
    assert result.detail["share_ref"] == pytest.approx(0.03) and result.detail["share_cur"] == pytest.approx(
        0.15
    )
    assert result.drift is True and result.p_value < 1e-10


def test_below_minimum_samples_gives_no_verdict():
    result = drift.score("ks", [5, 5, 5], [1, 1, 20])
    assert result.drift is None and result.verdict == "not enough data"
    assert drift.score("ks", [30, 30, 12], [100, 100, 100]).drift is not None  # a 72-image baseline is enough
    assert drift.score("ks", [10, 10, 10], [100, 100, 100]).drift is None


def test_clear_drift_is_called(rng):
    ref, cur = binned(rng.beta(8, 2, 1000)), binned(rng.beta(3, 3, 1000))
    for method in ("psi", "jensen_shannon", "hellinger", "ks"):
        assert drift.score(method, ref, cur).drift is True, method
    assert drift.score("wasserstein", ref, cur, edges=EDGES, threshold=0.05).drift is True
    assert drift.score("mean_drop", ref, cur, edges=EDGES).drift is True


@pytest.mark.parametrize("n_ref", [drift.MIN_SAMPLES, drift.MIN_REFERENCE])
@pytest.mark.parametrize("method", ["psi", "jensen_shannon", "hellinger", "ks", "mean_drop", "chi_square"])
def test_false_alarm_rate_under_no_drift_is_below_one_percent_at_the_minimum_sample_gate(method, n_ref):
    """Both sides drawn from one distribution at the minimum sizes (window vs window, and window vs the
    smallest baseline allowed), 2000 times."""
    rng = np.random.default_rng(11)
    n = drift.MIN_SAMPLES
    alarms = 0
    trials = 2000
    for _ in range(trials):
        if method == "chi_square":
            shares = [0.4, 0.3, 0.15, 0.1, 0.05]
            ref, cur = rng.multinomial(n_ref, shares), rng.multinomial(n, shares)
            alarms += bool(drift.score(method, ref, cur).drift)
        else:
            ref, cur = binned(rng.beta(6, 2, n_ref)), binned(rng.beta(6, 2, n))
            alarms += bool(drift.score(method, ref, cur, edges=EDGES).drift)
    assert alarms / trials < 0.01, f"{method}: {alarms} false alarms in {trials}"


def test_an_empty_side_is_not_enough_data_never_an_error():
    assert drift.chi_square([10, 5, 0], [0, 0, 0])[:2] == (0.0, 1.0)
    result = drift.score("chi_square", [100, 50, 80], [0, 0, 0])
    assert result.drift is None
    assert drift.score("psi", [300, 200], [0, 0]).drift is None
