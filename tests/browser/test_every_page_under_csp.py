"""Every page works in chromium under the Content-Security-Policy: it loads, and the console shows no
violation and no error."""

import pytest

from monitoring.choices import AlertState
from monitoring.models import Alert
from tests.factories import register, to_production
from tests.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_every_page_loads_without_console_errors(page, live_server, users, artifacts):
    for seed in (1, 2):
        register("cats", users["engineer"], seed=seed)
    to_production("cats", 1, users)
    alert = Alert.objects.create(title="inputs got darker", model="cats", version=1, state=AlertState.FIRING)
    failed = []
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    log_in(page, live_server.url, "admin")
    paths = [
        "/", "/models/cats/", "/models/cats/versions/2/", "/register/", "/models/cats/try",
        "/models/cats/monitoring", "/models/cats/review", "/alerts/", f"/alerts/{alert.pk}/", "/account/", "/api/docs/",
        "/admin/", "/no/such/page/",
    ]  # fmt: skip
    for path in paths:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == (404 if path == "/no/such/page/" else 200), path
        page.wait_for_load_state("networkidle")
        errors = [e for e in page.console_errors if "status of 404" not in e or path != "/no/such/page/"]
        assert errors == [], (path, errors, failed)
        page.console_errors.clear()
        failed.clear()
    page.goto(f"{live_server.url}/api/docs/")
    page.get_by_text("/api/v1/models/{name}/rollback").first.wait_for()  # Swagger UI drew the operations
    page.screenshot(path=str(artifacts / "api-docs.png"))
