"""How fast the operator's pages become usable in Chromium, cold cache: the models list, a model page, the
monitoring page and an alert page, against a running demo (`./dev demo`).

For each page, --rounds times in a fresh browser context (empty cache, signed in as the demo viewer):
- server: the navigation's responseStart − requestStart (the HTML's time on the server and wire);
- interactive: when the DOM is loaded and every chart in the first screen is drawn (plotly's
  `.js-plotly-plot` inside each `.chart` card that intersects the viewport) — what a person waits for;
- JS: bytes of JavaScript the page fetched (decoded), and in how many files;
and once more in the same context (warm cache), to show hashed static files are not fetched again.

    ./dev demo &                                   # in another terminal; wait for "Dashboard: …"
    .venv/bin/python bench/pages/run.py --base http://127.0.0.1:8000 --rounds 5

Writes bench/pages/results.json and prints a Markdown table. Goal (issue 31): interactive < 1.5 s cold,
≤ 1.5 MB of JavaScript on the monitoring page.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"

IN_VIEW_CHARTS_DRAWN = """() => {
  const cards = [...document.querySelectorAll('.chart')].filter((card) => {
    const r = card.getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight;
  });
  return document.readyState !== 'loading' && cards.every((card) => card.querySelector('.js-plotly-plot'));
}"""

MEASURE = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const scripts = performance.getEntriesByType('resource').filter((r) => r.initiatorType === 'script');
  return {
    server_ms: nav.responseStart - nav.requestStart,
    dom_ms: nav.domContentLoadedEventEnd,
    js_bytes: scripts.reduce((sum, r) => sum + r.decodedBodySize, 0),
    js_transferred: scripts.reduce((sum, r) => sum + r.transferSize, 0),
    js_files: scripts.length,
    charts: document.querySelectorAll('.chart').length,
  };
}"""


def cpu() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    model = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), ""
    )
    flags = next(
        (line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []
    )
    sets = [name for name in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile") if name in flags]
    return f"{model} ({', '.join(sets)})"


def one_load(browser, base: str, storage: dict, path: str) -> tuple[dict, dict]:
    context = browser.new_context(storage_state=storage, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(base + path, wait_until="domcontentloaded")
    page.wait_for_function(IN_VIEW_CHARTS_DRAWN, timeout=30_000, polling=20)
    interactive_ms = (time.perf_counter() - started) * 1000
    cold = {**page.evaluate(MEASURE), "interactive_ms": interactive_ms}
    started = time.perf_counter()
    page.goto(base + path, wait_until="domcontentloaded")
    page.wait_for_function(IN_VIEW_CHARTS_DRAWN, timeout=30_000, polling=20)
    warm = {**page.evaluate(MEASURE), "interactive_ms": (time.perf_counter() - started) * 1000}
    context.close()
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--model", default="imagenet-effnet-lite0")
    parser.add_argument("--user", default="viewer")
    parser.add_argument("--password", default="viewer-demo-pass")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{args.base}/accounts/login/")
        page.fill("input[name=username]", args.user)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit]")
        page.goto(f"{args.base}/alerts/?state=all")
        alert = page.locator("a[href^='/alerts/'][href$='/']").evaluate_all(
            "(links) => links.map((a) => a.getAttribute('href')).filter((h) => /^\\/alerts\\/\\d+\\/$/.test(h))"
        )
        storage = context.storage_state()
        context.close()
        pages = {
            "models list": "/",
            "model page": f"/models/{args.model}/",
            "monitoring page": f"/models/{args.model}/monitoring",
        }
        if alert:
            pages["alert page"] = alert[0]
        results = {}
        for name, path in pages.items():
            loads = [one_load(browser, args.base, storage, path) for _ in range(args.rounds)]
            cold = [c for c, _ in loads]
            warm = [w for _, w in loads]
            results[name] = {
                "path": path,
                "server_ms_median": statistics.median(c["server_ms"] for c in cold),
                "interactive_ms_median": statistics.median(c["interactive_ms"] for c in cold),
                "interactive_ms_max": max(c["interactive_ms"] for c in cold),
                "warm_interactive_ms_median": statistics.median(w["interactive_ms"] for w in warm),
                "js_bytes": cold[0]["js_bytes"],
                "js_files": cold[0]["js_files"],
                "js_transferred_cold": cold[0]["js_transferred"],
                "js_transferred_warm": warm[0]["js_transferred"],
                "charts": cold[0]["charts"],
            }
        browser.close()
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu(),
        "chromium": chromium,
        "rounds": args.rounds,
        "pages": results,
    }
    (HERE / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['cpu']}; {chromium}; {args.rounds} cold loads per page, 1366×900\n")
    print(
        "| page | server (median) | interactive, cold (median / max) | warm | JS (files) | JS over the wire cold / warm | charts |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['server_ms_median']:.0f} ms | {r['interactive_ms_median']:.0f} / {r['interactive_ms_max']:.0f} ms "
            f"| {r['warm_interactive_ms_median']:.0f} ms | {r['js_bytes'] / 1e6:.2f} MB ({r['js_files']}) "
            f"| {r['js_transferred_cold'] / 1e6:.2f} / {r['js_transferred_warm'] / 1e6:.2f} MB | {r['charts']} |"
        )


if __name__ == "__main__":
    main()
