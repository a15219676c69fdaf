"""The load test's 60-second version (bench/load/run.py --quick): each serving node capped at 0.3 of a core
(a cgroup CPU quota), the local stack under locust at twice what one capped node sustains, open loop
through haproxy. Its numbers, the scale-out of two nodes over one among them, are printed; the
benchmark's README has the 10-minute run and the scale-out goal (a benchmark, not a timed test)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.slow


def test_a_minute_at_twice_one_node_fails_no_request_and_keeps_memory_flat(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load" / "run.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_load"] = bench
    spec.loader.exec_module(bench)
    results = bench.main(["--minutes", "1", "--quick", "--out", str(tmp_path)])
    soak, one = results["soak"], results["one_node"]
    print(
        f"\nload: one node {one['rps']:.0f} req/s, two nodes {results['two_nodes']['rps']:.0f} req/s "
        f"({results['scale_out']:.2f}x, each capped at {results['quota_of_a_core']} of a core); soak asked {results['target_rps']:.0f}, achieved "
        f"{soak['rps']:.0f} req/s ({soak['rps'] / one['rps']:.2f}x), {soak['failures']} failures of "
        f"{soak['requests']}, P95 {soak['p95_ms']:.0f} ms"
    )
    assert one["failures"] == 0 and one["requests"] > 0
    assert results["two_nodes"]["failures"] == 0 and results["two_nodes"]["requests"] > 0
    assert soak["failures"] == 0 and soak["requests"] > 0
    for node in ("serving-1", "serving-2"):  # after warm-up, memory does not climb with the requests served
        rss = results["rss"][node]
        assert rss["end_mib"] < 1.1 * rss["start_mib"] + 16, (node, rss)
