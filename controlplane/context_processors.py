"""Every page says how far the demo's background build of EfficientNet-Lite0 is while it is not done
(signed-in pages; nothing where no build was queued: a file check per page)."""

from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from controlplane.demo import build_progress


def demo_build(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    record = build_progress(Path(settings.DEMO_MODEL_DIR))
    if record is None or record["state"] == "done":
        return {}
    return {"demo_build": record}


@login_required
def demo_build_fragment(request: HttpRequest) -> HttpResponse:
    """The banner again (htmx polls it while the build runs); once done, it says so and stops polling."""
    record = build_progress(Path(settings.DEMO_MODEL_DIR))
    return render(request, "controlplane/partials/_demo_build.html", {"demo_build": record})
