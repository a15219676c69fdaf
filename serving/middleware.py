"""The serving fast path: the model endpoints skip the dashboard's middleware.

Predict, health, readiness and metrics use no session, user, CSRF token, flash message or htmx header,
yet the dashboard's middleware costs every request time (measured: about 0.5 ms of a
predict request's 1 ms in Django). Placed right after SecurityMiddleware (whose headers still apply),
this middleware resolves those paths itself and calls the view; every other path goes down the usual
chain. Errors raised by a view are still turned into responses by Django's handler."""

from __future__ import annotations

from django.urls import Resolver404, resolve

SERVING_PREFIXES = ("/v1/", "/healthz", "/readyz", "/metrics")


class ServingFastPathMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(SERVING_PREFIXES):
            return self.get_response(request)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)  # the site's usual 404
        request.resolver_match = match
        return match.func(request, *match.args, **match.kwargs)
