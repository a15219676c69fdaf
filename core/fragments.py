"""Page fragments — the cards htmx loads into a page (a version's pre-flight, its INT8 build, the shadow,
the sample store, a production-at lookup). Asked for by htmx, a fragment answers alone; opened directly
(a link copied, a refresh), it answers as a page of its own, with the site's styles and navigation."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def from_htmx(request: HttpRequest) -> bool:
    """Whether htmx asked (django-htmx's middleware sets request.htmx)."""
    return bool(getattr(request, "htmx", False))


def render_fragment(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    title: str,
    back: str = "",
    status: int = 200,
) -> HttpResponse:
    if from_htmx(request):
        return render(request, template, context, status=status)
    page = {**context, "fragment": template, "fragment_title": title, "fragment_back": back}
    return render(request, "fragment_page.html", page, status=status)
