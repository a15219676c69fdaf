"""Every page × every role: no form that writes is shown to a role that may not use it (the services
still refuse; this is about what a person is offered), and each role is offered what it may do."""

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils import timezone

from monitoring.choices import AlertState
from monitoring.models import Alert, AlertRule, DriftScore, Silence
from registry import services
from tests.factories import register, to_production

pytestmark = pytest.mark.django_db

ROLES = ["viewer", "engineer", "approver", "operator", "admin"]
# Written out by hand from the role definitions (docs/roles.md), not derived from the code under test.
MAY = {
    "register": {"engineer", "admin"},
    "promote_staging": {"engineer", "admin"},
    "canary_start": {"engineer", "admin"},
    "canary_weight": {"engineer", "operator", "admin"},
    "canary_abort": {"engineer", "operator", "admin"},
    "production_request": {"engineer", "admin"},
    "production_approve": {"approver", "admin"},
    "production_reject": {"approver", "admin"},
    "rollback": {"operator", "admin"},
    "acknowledge": {"engineer", "approver", "operator", "admin"},
    "assign": {"engineer", "approver", "operator", "admin"},
    "comment": {"engineer", "approver", "operator", "admin"},
    "snooze": {"operator", "admin"},
    "resolve": {"operator", "admin"},
    "rebaseline": {"operator", "admin"},
    "samples_manage": {"engineer", "operator", "admin"},
    "preflight_run": {"engineer", "approver", "admin"},
    "shadow_manage": {"engineer", "operator", "admin"},
    "silence": {"operator", "admin"},
    "silence_expire": {"operator", "admin"},
    "rule-add": {"engineer", "operator", "admin"},
    "rule-save": {"engineer", "operator", "admin"},
    "rule-delete": {"engineer", "operator", "admin"},
    "plan": {"engineer", "operator", "admin"},
}
EVERYONE = {"logout", "account", "token-create"}


class Forms(HTMLParser):
    """The POST forms of a page, each named by what it does."""

    def __init__(self, path: str):
        super().__init__()
        self.path, self.found, self.current = path, [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "get").lower() == "post":
            self.current = {"action": attrs.get("action") or self.path, "hidden": None}
        elif tag == "input" and self.current is not None and attrs.get("name") in ("action", "what"):
            self.current["hidden"] = attrs.get("value")

    def handle_endtag(self, tag):
        if tag == "form" and self.current is not None:
            self.found.append(self.name(self.current))
            self.current = None

    @staticmethod
    def name(form) -> str:
        action = form["action"]
        if "/actions/" in action:
            short = action.rsplit("/", 1)[1]
            return {"staging": "promote_staging", "canary": "canary_start"}.get(short, short)
        if action == "/alerts/silences/":
            return "silence_expire" if form["hidden"] == "expire" else "silence"
        if action.startswith("/alerts/") or action.endswith("/monitoring/settings"):
            return form["hidden"]
        if action == "/register/" or action.endswith("/edit"):  # a version's description and tags: REGISTER
            return "register"
        if action.endswith("/logout/"):
            return "logout"
        if action == "/account/":
            return "token-create"
        if action.endswith("/samples/manage"):
            return "samples_manage"
        if action.endswith("/preflight"):
            return "preflight_run"
        if action.endswith("/shadow"):
            return "shadow_manage"
        return action


@pytest.fixture
def scene(users):
    """cats: v1 then v2 approved (v1 is the rollback target), v3 the canary with a pending request, v4 in
    staging; an alert firing on v2."""
    for seed in (1, 2, 3, 4):
        register("cats", users["engineer"], seed=seed)
    to_production("cats", 1, users)
    to_production("cats", 2, users)
    eng = users["engineer2"]
    services.version_stage_staging(model_name="cats", version=3, actor=eng)
    services.canary_start(model_name="cats", version=3, weight=5, actor=eng)
    services.production_request(model_name="cats", version=3, actor=eng)
    services.version_stage_staging(model_name="cats", version=4, actor=eng)
    rule = AlertRule.objects.create(model="cats", name="brightness moved", signal="brightness", method="ks")
    now = timezone.now()
    score = DriftScore.objects.create(
        model="cats", version=2, signal="brightness", method="ks", value=0.4, threshold=0.1, n_ref=300, n_cur=300,
        window_start=now - timedelta(hours=1), window_end=now, verdict="drift", rule=rule,
    )  # fmt: skip
    alert = Alert.objects.create(title="inputs got darker", model="cats", version=2, signal="brightness",
                                 state=AlertState.FIRING, rule=rule, last_score=score)  # fmt: skip
    Silence.objects.create(
        model="cats", version=2, comment="known", ends_at=timezone.now() + timedelta(hours=1)
    )
    return [
        "/", "/models/cats/", "/models/cats/versions/1/", "/register/",
        "/models/cats/try", "/models/cats/monitoring", "/alerts/", f"/alerts/{alert.pk}/", "/account/",
        "/alerts/silences/", "/models/cats/monitoring/settings",
        # the model and version pages' fragments (loaded by htmx): sample store, shadow, pre-flight
        "/models/cats/samples", "/models/cats/shadow", "/models/cats/versions/3/preflight",
    ]  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
def test_each_page_offers_a_role_only_what_it_may_do(role, users, scene):
    browser = Client()
    browser.force_login(users[role])
    offered = set()
    for path in scene:
        page = browser.get(path)
        assert page.status_code == 200, (path, page.status_code)
        parser = Forms(path)
        parser.feed(page.content.decode())
        for form in parser.found:
            assert form in EVERYONE or role in MAY[form], f"{path} offers {role} the form {form!r}"
            offered.add(form)
    expected = {form for form, roles in MAY.items() if role in roles}
    if role != "admin":  # a canary runs with a pending request: only an admin's override forms start or ask
        expected -= {"canary_start", "production_request"}
    assert expected <= offered, f"{role} is not offered {sorted(expected - offered)}"


def test_a_fragment_opened_directly_is_a_styled_page_and_from_htmx_a_fragment(
    users, model_with_versions, client
):
    """The cards htmx loads into pages (pre-flight, INT8, shadow, sample store) open as pages of their own
    when a link is followed directly: the site's stylesheet and navigation, a way back to their page."""
    client.force_login(users["viewer"])
    for url, back in (
        ("/models/cats/versions/2/preflight", "/models/cats/versions/2/"),
        ("/models/cats/versions/2/quantization", "/models/cats/versions/2/"),
        ("/models/cats/shadow", "/models/cats/"),
        ("/models/cats/samples", "/models/cats/"),
    ):
        page = client.get(url).content.decode()
        assert "css/app" in page and 'class="topbar"' in page and f'href="{back}"' in page, url
        fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
        assert "<html" not in fragment and "css/app" not in fragment, url
