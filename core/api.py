"""The API's edges, shared by every app: every error leaves as {"error": {"code", "message"}} (mapped here
once), input is parsed by serializers into BadRequest on failure, query-string times are parsed alike."""

import logging
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse, QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions as drf
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail as DrfErrorDetail
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import set_rollback

from .exceptions import ApplicationError, BadRequest

log = logging.getLogger(__name__)

# The error answers any operation can give, besides what it declares: the schema says what the API does.
READ_ERRORS = (400, 401, 404, 429, 503)
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 428, 429, 503)


# Input fields that take a JSON body at its word: text must be a string, a number a number, a flag a
# boolean (DRF's own fields would turn 5 into "5", "5" into 5, 0 into False). In a form every value is
# text, so there the text forms are read.


def _from_form(field: serializers.Field) -> bool:
    return isinstance(getattr(field.root, "initial_data", None), QueryDict)


class Text(serializers.CharField):
    """Text as sent: not stripped (a trimmed value would be a silently changed one)."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class Whole(serializers.IntegerField):
    default_error_messages = {"invalid": "A whole number is required."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not (
            isinstance(data, int) or (isinstance(data, str) and _from_form(self))
        ):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class Number(serializers.FloatField):
    """A finite number as sent: not text, not a boolean, and not infinite (JSON's 1e999 parses as
    infinity; NaN is no JSON at all). A number too large for a float is refused, not a 500."""

    default_error_messages = {
        "invalid": "A number is required.",
        "finite": "A finite number is required, got {input}.",
    }

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not (
            isinstance(data, int | float) or (isinstance(data, str) and _from_form(self))
        ):
            self.fail("invalid")
        try:
            value = float(data)
        except (ValueError, OverflowError):
            self.fail("invalid")
        if not math.isfinite(value):
            self.fail("finite", input=str(data)[:20])
        return float(super().to_internal_value(value))


class Capped(serializers.ListField):
    """A list refused by its length before any item is parsed (DRF checks max_length after parsing every
    item, which a hostile list of 10^5 objects turns into seconds of work)."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, list) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return list(super().to_internal_value(data))


class Flag(serializers.BooleanField):
    FORM_TRUE, FORM_FALSE = {"true", "on", "1"}, {"false", "off", "0", ""}

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and _from_form(self):
            if data.lower() in self.FORM_TRUE:
                return True
            if data.lower() in self.FORM_FALSE:
                return False
        self.fail("invalid", input=data)
        raise AssertionError  # fail() raises


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorOutput(serializers.Serializer):
    error = ErrorDetail()


class Schema(AutoSchema):
    """drf-spectacular's AutoSchema, with our error answers on every operation."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        bodies: dict[str, Any] = super()._get_response_bodies(direction)
        codes = READ_ERRORS if self.method in ("GET", "HEAD", "OPTIONS") else WRITE_ERRORS
        for code in codes:
            bodies.setdefault(
                str(code), self._get_response_for_code(ErrorOutput, str(code), direction=direction)
            )
        return bodies


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        return [m for key, value in detail.items() for m in _flatten(value, f"{prefix}{key}: ")]
    if isinstance(detail, list):
        return [m for item in detail for m in _flatten(item, prefix)]
    return [f"{prefix}{detail}"]


UNKNOWN_FIELD = "unknown_field"  # the code of Closed's refusal, kept on the field's ErrorDetail


class Closed(serializers.Serializer):
    """The base of every write's input: a JSON body may carry only the fields the serializer names — a
    misspelt field is a 400 `invalid` naming it (in the message, `fields` and `unknown_fields`), never
    silently ignored. (A form carries the page's own fields too, its CSRF token among them, so forms are
    not checked.)"""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping) and not isinstance(getattr(self.root, "initial_data", None), QueryDict):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {key: [DrfErrorDetail("unknown field", code=UNKNOWN_FIELD)] for key in unknown}
                )
        return super().to_internal_value(data)


def _unknown(detail: Any, prefix: str = "") -> list[str]:
    """The fields Closed refused as unknown, by their path in the body (`items.0.lable`)."""
    if isinstance(detail, dict):
        return [path for key, value in detail.items() for path in _unknown(value, f"{prefix}{key}.")]
    if isinstance(detail, list):
        if any(getattr(item, "code", None) == UNKNOWN_FIELD for item in detail):
            return [prefix.rstrip(".")]
        return [path for i, item in enumerate(detail) for path in _unknown(item, f"{prefix}{i}.")]
    return []


def invalid_extra(detail: Any) -> dict[str, Any]:
    """What an `invalid` error carries besides its message: every field's problems, and the unknown fields
    named apart (`unknown_fields`), so a client can tell a misspelt field from a bad value."""
    unknown = _unknown(detail)
    return {"fields": detail, **({"unknown_fields": unknown} if unknown else {})}


def validated(
    serializer_class: type[Serializer], data: Any, *, partial: bool = False, **extra: Any
) -> dict[str, Any]:
    """Input parsed by a serializer — the API's and the pages' alike — or BadRequest naming every problem.
    `extra` adds values from elsewhere (the URL), over what the body says; `partial` (PATCH) takes only the
    fields sent."""
    if extra:
        if isinstance(data, QueryDict):  # a form stays a form: its values are read as text
            data = data.copy()
            for key, value in extra.items():
                data[key] = str(value)
        elif isinstance(data, Mapping):
            data = {**data, **extra}
        else:
            raise BadRequest("the body must be an object", code="invalid")
    serializer = serializer_class(data=data, partial=partial)
    if not serializer.is_valid():
        raise BadRequest(
            "; ".join(_flatten(serializer.errors)), code="invalid", extra=invalid_extra(serializer.errors)
        )
    return dict(serializer.validated_data)


def parse_at(raw: str | None) -> datetime:
    """A point in time from a query string: ISO 8601; naive times are taken in the site's time zone. A '+'
    of an offset that arrived unescaped (decoded to a space) is put back."""
    if not raw:
        raise BadRequest("give the time as ?at=2026-11-25T14:00:00Z", code="invalid_time")
    try:
        at = parse_datetime(raw.replace(" ", "+") if raw.count(" ") == 1 and "T" in raw else raw)
    except ValueError:
        at = None
    if at is None:
        raise BadRequest(f"not an ISO 8601 time: {raw!r}", code="invalid_time")
    return at if timezone.is_aware(at) else timezone.make_aware(at)


# The codes of the answers Django itself gives (a view's @require_POST, CSRF, the URL resolver): the same
# names DRF uses for the same statuses, listed in docs/api.md's error table.
HTTP_CODES = {
    400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 406: "not_acceptable",
    413: "payload_too_large", 415: "unsupported_media_type", 500: "internal_error",
}  # fmt: skip
UNEXPECTED = "an unexpected error occurred; it has been logged"


class HttpError(Exception):
    """An error answer Django gave without an exception (an HTML 405, a CSRF page), to be rendered as JSON
    with its status and headers (Allow included)."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


def error_answer(exc: BaseException, *, where: object = None) -> tuple[int, dict[str, str], dict[str, Any]]:
    """The one mapping of an error to its answer: (HTTP status, headers, {"error": {"code", "message",
    …extra}}). Every way out calls it — DRF's exception handler, the middleware under /api/ and /v1/,
    serving's predict paths — so an error answers alike wherever it is raised, its `extra` kept. A 503 or
    429 that says when to come back (`retry_after`) says it in Retry-After too. Anything unexpected is a
    logged 500 (`where` names the view in the log)."""
    headers: dict[str, str] = {}
    if isinstance(exc, HttpError):
        headers = dict(exc.headers)
        status, body = exc.status, error_body(HTTP_CODES.get(exc.status, f"http_{exc.status}"), exc.message)
    elif isinstance(exc, ApplicationError):
        status, body = exc.http_status, error_body(exc.code, exc.message, **exc.extra)
        if wait := exc.extra.get("retry_after"):
            headers.setdefault("Retry-After", str(wait))
    elif isinstance(exc, Http404):
        status, body = 404, error_body("not_found", str(exc) or "not found")
    elif isinstance(exc, PermissionDenied):
        status, body = 403, error_body("forbidden", str(exc) or "permission denied")
    elif isinstance(exc, drf.ValidationError):
        status, body = (
            400,
            error_body("invalid", "; ".join(_flatten(exc.detail)), **invalid_extra(exc.detail)),
        )
    elif isinstance(exc, drf.APIException):
        if auth_header := getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = auth_header
        if wait := getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(wait))
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else str(exc.default_code)
        status, body = exc.status_code, error_body(code, str(exc.detail))
    else:
        log.error("unhandled error in %s", where, exc_info=exc)
        status, body = 500, error_body("internal_error", UNEXPECTED)
    return status, headers, body


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's exception handler (settings.REST_FRAMEWORK): error_answer, the transaction rolled back."""
    set_rollback()
    status, headers, body = error_answer(exc, where=context.get("view"))
    return Response(body, status=status, headers=headers)


class _Unexpected(ApplicationError):
    """An error Django has logged already (handler500): answered as the 500 it is."""

    code, http_status = "internal_error", 500

    def __init__(self) -> None:
        super().__init__(UNEXPECTED)


def error_response(exc: BaseException) -> JsonResponse:
    """error_answer as a Django response."""
    status, headers, body = error_answer(exc)
    return JsonResponse(body, status=status, headers=headers)


@csrf_exempt  # any method on an unknown path is a JSON 404, not a CSRF page
def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(Http404(f"no such endpoint: {request.path}"))


def json_500(request: HttpRequest) -> JsonResponse:
    return error_response(_Unexpected())


def blank_refused(params: Any, *names: str) -> None:
    """A query parameter given but empty (`?until=`) is refused for an API client, where a browser form's
    empty field would mean "not given": what the schema says is a date-time is never an empty string."""
    for name in names:
        if name in params and not str(params.get(name)).strip():
            raise BadRequest(f"{name} is empty: give a value, or leave the parameter out", code="invalid")
