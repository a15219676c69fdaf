"""The one error hierarchy of the project: every refusal a user can see is an ApplicationError."""


class ApplicationError(Exception):
    """A refusal with a stable machine code, a human message and the HTTP status it maps to."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, extra: dict[str, object] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra or {}


class BadRequest(ApplicationError):
    code = "bad_request"
    http_status = 400


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404


class NotAuthenticated(ApplicationError):
    code = "not_authenticated"
    http_status = 401


class Forbidden(ApplicationError):
    code = "forbidden"
    http_status = 403


class Conflict(ApplicationError):
    """A workflow rule blocked the action; the message names the rule."""

    code = "conflict"
    http_status = 409


class PayloadTooLarge(ApplicationError):
    code = "payload_too_large"
    http_status = 413


class ServiceUnavailable(ApplicationError):
    code = "unavailable"
    http_status = 503


class PreconditionRequired(ApplicationError):
    """A write that must name the state it expects (If-Match or an expected_* field) did not."""

    code = "expected_state_required"
    http_status = 428


# What a person reads for a refused request instead of its HTTP status (pages and the tester's script: the
# map is put into every page as JSON, #refusal-words in base.html).
REFUSALS = {
    400: "Not accepted", 401: "Sign in first", 403: "Not allowed", 404: "Not found", 405: "Not possible here",
    409: "Not possible now", 412: "Changed meanwhile", 413: "Too large", 415: "Not a supported image",
    422: "Not accepted", 428: "Say which state you decided on", 429: "Too many tries: wait a little",
    500: "Failed on our side", 503: "Unavailable for now: try again shortly",
}  # fmt: skip


def refusal(status: int) -> str:
    return REFUSALS.get(status, "Failed" if status >= 500 else "Not accepted")
