"""The predict endpoint at the WSGI level, in front of Django.

`POST /v1/models/<name>/predict` with a raw image body is the hot path of serving. Django's request and
response machinery around the very same code cost 0.75–1.0 ms per request on our 2-core machines
(bench/README.md), a tenth of an INT8 inference. Here such a request is answered directly by
`serving.views.predict_answer`, the function the Django view calls too: the same JSON, the same errors
and metrics, the same security headers as SecurityMiddleware sets, Django's request_started /
request_finished signals (database connections are handled as for any request). Multipart uploads (the
tester page), other methods and every other path go to Django. With SECURE_SSL_REDIRECT or HSTS
configured, everything goes to Django, whose SecurityMiddleware knows how to treat HTTPS."""

from __future__ import annotations

import json
import logging
import re
from http import HTTPStatus
from urllib.parse import parse_qs

from django.conf import settings
from django.core import signals

from controlplane.api import error_body

from .views import predict_answer

log = logging.getLogger(__name__)

PREDICT_PATH = re.compile(r"^/v1/models/(?P<name>[^/]+)/predict$")


def _security_headers() -> list[tuple[str, str]]:
    """The headers Django's SecurityMiddleware adds to a plain-HTTP response, asked of it once."""
    from django.http import HttpRequest, HttpResponse
    from django.middleware.security import SecurityMiddleware

    middleware = SecurityMiddleware(lambda request: HttpResponse())
    response = middleware.process_response(HttpRequest(), HttpResponse())
    return [(name, value) for name, value in response.items() if name != "Content-Type"]


def _read(stream, length: int) -> bytes:
    chunks, remaining = [], length
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class PredictFastPath:
    """WSGI middleware: raw-body predict requests answered here, everything else by `application`."""

    def __init__(self, application):
        self.application = application
        self.enabled = not (settings.SECURE_SSL_REDIRECT or settings.SECURE_HSTS_SECONDS)
        self.headers = _security_headers()

    def __call__(self, environ, start_response):
        match = PREDICT_PATH.match(environ.get("PATH_INFO", ""))
        if (
            match is None
            or not self.enabled
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("CONTENT_TYPE", "").startswith("multipart/")
        ):
            return self.application(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            status, payload = self._answer(match["name"], environ)
        except Exception:  # noqa: BLE001 - the client gets JSON, the log gets the traceback
            log.exception("predict %s failed unexpectedly", match["name"])
            status, payload = 500, error_body("internal", "the prediction failed unexpectedly; it was logged")
        finally:
            signals.request_finished.send(sender=self.__class__)
        body = json.dumps(payload).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *self.headers],
        )
        return [body]

    def _answer(self, name: str, environ) -> tuple[int, dict]:
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
        )
