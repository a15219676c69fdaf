"""The server's WSGI wrapper: a finished response is closed (Django's request_finished work done) before
its bytes go to the server; streaming responses pass through for the server to iterate and close."""

import io

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished
from django.http import StreamingHttpResponse

from controlplane.serve import _closed_before_sent


def environ(path: str) -> dict:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "testserver",
        "SERVER_PORT": "80", "HTTP_HOST": "testserver", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }  # fmt: skip


@pytest.fixture
def finished():
    calls = []

    def receiver(**kwargs):
        calls.append(kwargs["sender"])

    request_finished.connect(receiver)
    yield calls
    request_finished.disconnect(receiver)


def test_a_finished_response_is_closed_before_it_is_handed_over(db, finished):
    started = {}
    app = _closed_before_sent(WSGIHandler())
    body = app(environ("/healthz"), lambda status, headers: started.update(status=status))
    assert finished, "request_finished ran before the server got the body"
    assert started["status"] == "200 OK"
    assert isinstance(body, list) and b"".join(body) == b'{"status": "alive"}'


def test_a_streaming_response_is_left_to_the_server(finished):
    streamed = StreamingHttpResponse(iter([b"a", b"b"]))

    def app(environ, start_response):
        start_response("200 OK", [])
        return streamed

    body = _closed_before_sent(app)(environ("/stream"), lambda status, headers: None)
    assert body is streamed and not finished  # not consumed, not closed
    assert b"".join(body) == b"ab"
    body.close()
    assert finished
