"""Every page at a phone's width (390 px): nothing wider than the viewport, so nothing (a Roll back
button, a table's last column) sits off screen; wide tables scroll inside their card instead."""

import pytest
from playwright.sync_api import expect

from monitoring.models import Alert, AlertRule, Silence
from tests.helpers import log_in, setup_canary, traffic

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def overflowing(page) -> list[str]:
    """What reaches past the viewport's right edge (outside any element that scrolls on its own)."""
    return page.evaluate(
        """() => {
        const limit = document.documentElement.clientWidth + 1;
        const scrolls = (el) => { for (let e = el.parentElement; e; e = e.parentElement) {
            const s = getComputedStyle(e); if (['auto', 'scroll', 'hidden'].includes(s.overflowX)) return true; }
            return false; };
        const wide = [...document.querySelectorAll('body *')].filter((el) => {
            const r = el.getBoundingClientRect();
            return r.width > 0 && r.right > limit && !scrolls(el) && getComputedStyle(el).position !== 'fixed';
        }).map((el) => `${el.tagName.toLowerCase()}${el.className ? '.' + String(el.className).split(' ')[0] : ''}`
            + `${el.dataset.testid ? '[' + el.dataset.testid + ']' : ''} → ${Math.round(el.getBoundingClientRect().right)}`);
        if (document.documentElement.scrollWidth > limit) wide.unshift(`page ${document.documentElement.scrollWidth}`);
        return wide.slice(0, 8);
    }"""
    )


def operator_pages(users, settings, live_server) -> list[str]:
    """A canary running, production traffic, a firing alert and a silence: every page an operator uses
    has something on it. Their paths."""
    setup_canary(users, canary_seed=2, weight=10, settings=settings, live_server=live_server)
    traffic(range(20), "production")
    rule = AlertRule.objects.create(model="cats", name="inputs got darker", signal="brightness", method="ks")
    alert = Alert.objects.create(
        title="inputs got darker", model="cats", version=1, state="firing", signal="brightness", rule=rule
    )
    from datetime import timedelta

    from django.utils import timezone

    Silence.objects.create(
        model="cats", version=1, comment="known", ends_at=timezone.now() + timedelta(hours=2)
    )
    return [
        "/", "/models/cats/", "/models/cats/versions/1/", "/models/cats/versions/2/", "/models/cats/try",
        "/models/cats/monitoring", "/models/cats/monitoring/settings", "/alerts/", f"/alerts/{alert.pk}/",
        "/alerts/silences/", "/register/", "/account/",
    ]  # fmt: skip


def test_no_page_overflows_a_phone(page, live_server, users, settings):
    paths = operator_pages(users, settings, live_server)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url, "admin")  # the role offered the most buttons
    found = {}
    for path in paths:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        wide = overflowing(page)
        if wide:
            found[path] = wide
    assert found == {}, "\n".join(f"{p}: {w}" for p, w in found.items())
    page.goto(f"{live_server.url}/models/cats/")
    expect(page.get_by_test_id("abort-canary")).to_be_in_viewport()
    assert page.console_errors == []
