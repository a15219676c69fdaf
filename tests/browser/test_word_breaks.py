"""Words stay whole: at a phone's width (390 px) and a laptop's (1366 px) no word in a badge, button, chip,
table cell, heading or label is broken across lines ("can|ary", "Sa|ve"), on every page an operator
uses. Long identifiers (hashes, run ids, URLs) may wrap: they are marked `.mono`."""

import pytest

from tests.browser.test_narrow_screens import operator_pages
from tests.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BROKEN_WORDS = """() => {
  const found = [];
  const skip = (el) => el.closest('.mono, code, pre, textarea, script, style, .js-plotly-plot, [hidden]');
  const walker = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node && found.length < 12; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || skip(el) || !el.matches('button, button *, .badge, .chip, th, td, td *, h1, h1 *, h2, h3, label, dt, dd, a, summary, .verdict')) continue;
    if (!el.getClientRects().length) continue;
    const text = node.textContent;
    const words = [...text.matchAll(/\\S+/g)];
    for (const m of words) {
      if (m[0].length < 3) continue;
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
      if (lines.size > 1) found.push(`${el.tagName.toLowerCase()}${el.className ? '.' + String(el.className).split(' ')[0] : ''}: "${m[0]}"`);
    }
  }
  return found;
}"""


@pytest.mark.parametrize("width", [390, 1366])
def test_no_word_is_broken_across_lines(page, live_server, users, settings, width):
    paths = operator_pages(users, settings, live_server)
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url, "admin")  # the role offered the most buttons
    found = {}
    for path in paths:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        broken = page.evaluate(BROKEN_WORDS)
        if broken:
            found[path] = broken
    assert found == {}, "\n".join(f"{p}: {w}" for p, w in found.items())
    if width == 390:  # the versions table becomes one card per version: nothing to scroll sideways
        page.goto(f"{live_server.url}/models/cats/")
        versions = page.locator("table.versions")
        assert versions.evaluate("t => t.scrollWidth <= t.clientWidth + 1")
        assert page.locator("table.versions td.detail").first.is_hidden()
        assert page.locator('table.versions tr[data-version="1"] td.when').is_visible()
