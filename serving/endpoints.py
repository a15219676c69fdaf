"""The model endpoints over HTTP: predict, /healthz, /readyz, /metrics — the one home of the predict path.

`predict_answer` turns a request into (status, JSON body), errors counted and explained; both ways in
call it, so they answer alike:
- `PredictFastPath`, WSGI middleware in front of Django, answers raw-body predictions (the hot path)
  without Django's request and response machinery (docs/serving.md has the measurements);
- the Django view `predict` answers multipart uploads (the tester page).
`ServingFastPathMiddleware` lets the other model endpoints skip the dashboard's middleware (sessions,
auth, CSRF, messages, htmx), which they do not use."""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.core import signals
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from core import reporting
from core.api import error_answer, error_body, error_response
from core.converters import MAX_ID
from core.exceptions import ApplicationError, BadRequest
from registry.choices import Stage

from . import metrics, services
from .model_cache import model_cache
from .preprocessing import ImageTooLarge
from .signal_catalogue import Source

log = logging.getLogger(__name__)

PREDICT_PATH = re.compile(r"^/v1/models/(?P<name>[^/]+)/predict$")
SERVING_PREFIXES = ("/v1/", "/healthz", "/readyz", "/metrics")


def predict_answer(
    name: str,
    *,
    content_length: int,
    read_image: Callable[[], bytes],
    version: str | None,
    stage: str | None,
    routing_key: str | None,
    source: str = Source.LIVE,
    min_confidence: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """The predict endpoint's answer, as (HTTP status, JSON body), errors counted (by traffic source) and
    explained."""
    try:
        if content_length > settings.SERVING_MAX_BODY_BYTES:
            raise ImageTooLarge(
                f"the body is {content_length:,} bytes; the limit is {settings.SERVING_MAX_BODY_BYTES:,}"
            )
        if version is not None and not (version.isdigit() and int(version) <= MAX_ID):
            raise BadRequest(f"version must be a whole number up to {MAX_ID}", code="bad_request")
        cut = _confidence(min_confidence)
        with metrics.in_flight.track_inprogress():
            answer = services.predict(
                model_name=name,
                data=read_image(),
                routing_key=routing_key,
                version=int(version) if version else None,
                stage=stage,
                source=source,
                min_confidence=cut,
            )
    except ApplicationError as exc:
        if exc.http_status == 500:  # ours to fix (reported, with its model, version and stage)
            log.error("predict %s failed: %s", name, exc.message, exc_info=exc)
        elif exc.http_status > 500:  # a dependency or a load in progress: the answer names it
            log.warning("predict %s failed: %s", name, exc.message)
        metrics.errors.labels(
            model=model_cache().model_label(name, exc),
            type=exc.code if exc.code in metrics.ERROR_TYPES else "bad_request",
            source=source,
        ).inc()
        status, _, body = error_answer(exc)  # its Retry-After is read from the body (_retry_after)
        return status, body
    return 200, answer


def _confidence(text: str | None) -> float | None:
    """The `min_confidence` query parameter: a number from 0 to 1, or absent."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:  # NaN fails too
        raise BadRequest(
            f"min_confidence must be a number from 0 to 1, got {text[:40]!r}", code="bad_request"
        )
    return value


# --- through Django ----------------------------------------------------------------------------


def _image_bytes(request: HttpRequest) -> bytes:
    if request.content_type == "multipart/form-data":
        try:
            files = request.FILES
        except MultiPartParserError as exc:
            raise BadRequest(f"the multipart body could not be parsed: {exc}", code="decode") from exc
        upload: Any = files.get("file") or next(iter(files.values()), None)
        if upload is None:
            raise BadRequest("send the image as the 'file' field or as the raw body", code="decode")
        return upload.read()
    return request.body


def _retry_after(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A 503 that knows when to come back says so in Retry-After, as well as in its JSON."""
    wait = body.get("error", {}).get("retry_after")
    return [("Retry-After", str(wait))] if wait else []


def answer_request(request: HttpRequest, name: str, *, source: str, routing_key: str | None) -> JsonResponse:
    """A prediction asked through Django (a raw body or a multipart upload), as JSON."""
    status, body = predict_answer(
        name,
        content_length=int(request.META.get("CONTENT_LENGTH") or 0),
        read_image=lambda: _image_bytes(request),
        version=request.GET.get("version"),
        stage=request.GET.get("stage"),
        routing_key=routing_key,
        source=source,
        min_confidence=request.GET.get("min_confidence"),
    )
    return JsonResponse(body, status=status, headers=dict(_retry_after(body)))


def compare_request(request: HttpRequest, name: str, *, source: str) -> JsonResponse:
    """Production's and the canary's answers to one image (each as `answer_request` would give it) and
    how the canary's differs, as their task pairs them: the tester's "compare production vs canary"."""
    image = functools.cache(lambda: _image_bytes(request))  # a multipart upload reads only once
    answers: dict[str, dict[str, Any]] = {}
    for stage in (Stage.PRODUCTION, Stage.CANARY):
        status, body = predict_answer(
            name,
            content_length=int(request.META.get("CONTENT_LENGTH") or 0),
            read_image=image,
            version=None,
            stage=stage,
            routing_key=None,
            source=source,
            min_confidence=request.GET.get("min_confidence"),
        )
        if status != 200:
            return JsonResponse(body, status=status, headers=dict(_retry_after(body)))
        answers[stage] = body
    try:
        comparison = services.answers_compare(
            model_name=name, first=answers[Stage.PRODUCTION], second=answers[Stage.CANARY]
        )
    except ApplicationError as exc:
        return error_response(exc)
    return JsonResponse({**answers, "comparison": comparison})


@csrf_exempt
@require_POST
def predict(request: HttpRequest, name: str) -> HttpResponse:
    """Multipart uploads come here; raw image bodies are answered by PredictFastPath."""
    return answer_request(request, name, source=Source.LIVE, routing_key=request.headers.get("X-Routing-Key"))


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "alive"})


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """Whether this process can serve (docs/serving.md, "Health and readiness"): 200 when every live
    model's production version answered a real inference ("ready"), or some did ("degraded": the others
    are listed with their cause and answer a fast 503); 503 while warming up or when none can serve.
    `?model=NAME` asks for one model alone: 200 only when it is ready."""
    name = request.GET.get("model")
    if services.warming():
        body = error_body("warming_up", "this process is loading the live versions")
        return JsonResponse(body, status=503)
    try:
        models = services.readiness(model_name=name)
    except ApplicationError as exc:
        return error_response(exc)
    if not models:
        which = f"{name!r} has" if name else "no model has"
        return JsonResponse(error_body("no_model", f"{which} no production version"), status=503)
    ready = sum(1 for m in models.values() if m["ready"])
    status = "ready" if ready == len(models) else "degraded" if ready else "not_ready"
    return JsonResponse({"status": status, "models": models}, status=200 if ready else 503)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


class ServingFastPathMiddleware:
    """Placed right after SecurityMiddleware (whose headers still apply): the model endpoints are resolved
    here and called directly; every other path goes down the usual chain. Errors raised by a view are
    still turned into responses by Django's handler."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(SERVING_PREFIXES):
            return self.get_response(request)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)  # the site's usual 404
        request.resolver_match = match
        reporting.context(route=match.route, model=match.kwargs.get("name"))
        response: HttpResponse = match.func(request, *match.args, **match.kwargs)
        if callable(getattr(response, "render", None)):  # an API view's answer (DRF) renders late
            response = response.render()  # type: ignore[attr-defined]
        return response


# --- in front of Django ------------------------------------------------------------------------


def _security_headers(*, secure: bool) -> list[tuple[str, str]]:
    """The headers Django's SecurityMiddleware adds to a response over HTTP or HTTPS (HSTS), asked of
    it once per kind."""
    from django.middleware.security import SecurityMiddleware

    middleware = SecurityMiddleware(lambda request: HttpResponse())
    environ = {
        "REQUEST_METHOD": "POST",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "https" if secure else "http",
    }
    response = middleware.process_response(WSGIRequest(environ), HttpResponse())
    return [(name, value) for name, value in response.items() if name != "Content-Type"]


def _read(stream: Any, length: int) -> bytes:
    chunks, remaining = [], length
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PredictFastPath:
    """WSGI middleware: raw-body predict requests answered here, everything else by `application`.

    Such a request gets the same JSON, errors and metrics as through the Django view, the security
    headers SecurityMiddleware sets, and Django's request_started / request_finished signals (database
    connections are handled as for any request). Whether a request came over HTTPS is decided as Django
    decides it (SECURE_PROXY_SSL_HEADER included); a plain-HTTP one that SECURE_SSL_REDIRECT would
    redirect goes to Django, which does."""

    def __init__(self, application: WSGIApp):
        self.application = application
        self.headers = {secure: _security_headers(secure=secure) for secure in (False, True)}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        match = PREDICT_PATH.match(environ.get("PATH_INFO", ""))
        if (
            match is None
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("CONTENT_TYPE", "").startswith("multipart/")
        ):
            return self.application(environ, start_response)
        secure = WSGIRequest(environ).is_secure()  # reads no body
        if settings.SECURE_SSL_REDIRECT and not secure:
            return self.application(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            with reporting.request_scope(route="v1/models/<name>/predict", model=match["name"]):
                try:
                    status, payload = self._answer(match["name"], environ)
                except Exception:  # noqa: BLE001 - the client gets JSON, the log (and Sentry) the traceback
                    log.exception("predict %s failed unexpectedly", match["name"])
                    failed = error_body("internal", "the prediction failed unexpectedly; it was logged")
                    status, payload = 500, failed
        finally:
            signals.request_finished.send(sender=self.__class__)
        body = json.dumps(payload).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                *_retry_after(payload),
                *self.headers[secure],
            ],
        )
        return [body]

    def _answer(self, name: str, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        query = parse_qs(environ.get("QUERY_STRING", ""))
        return predict_answer(
            name,
            content_length=length,
            read_image=lambda: _read(environ["wsgi.input"], length),
            version=query["version"][-1] if "version" in query else None,
            stage=query["stage"][-1] if "stage" in query else None,
            routing_key=environ.get("HTTP_X_ROUTING_KEY"),
            min_confidence=query["min_confidence"][-1] if "min_confidence" in query else None,
        )
