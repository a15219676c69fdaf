"""The server's WSGI wrapper: the process environment stays out of request.META; a finished response is
closed (Django's request_finished work done) before its bytes go to the server; streaming responses
pass through for the server to iterate and close."""

import os

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished
from django.http import StreamingHttpResponse

from controlplane.serve import _for_granian
from tests.helpers import wsgi_environ


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
    app = _for_granian(WSGIHandler())
    body = app(wsgi_environ("/healthz"), lambda status, headers: started.update(status=status))
    assert finished, "request_finished ran before the server got the body"
    assert started["status"] == "200 OK"
    assert isinstance(body, list) and b"".join(body) == b'{"status": "alive"}'


@pytest.mark.django_db  # closing the body sends request_finished, which checks this thread's connection
def test_a_streaming_response_is_left_to_the_server(finished):
    streamed = StreamingHttpResponse(iter([b"a", b"b"]))

    def app(environ, start_response):
        start_response("200 OK", [])
        return streamed

    body = _for_granian(app)(wsgi_environ("/stream"), lambda status, headers: None)
    assert body is streamed and not finished  # not consumed, not closed
    assert b"".join(body) == b"ab"
    body.close()
    assert finished


def test_the_process_environment_stays_out_of_request_meta(monkeypatch):
    monkeypatch.setenv("CVCP_TEST_SECRET", "hunter2")
    monkeypatch.setenv("HTTP_X_SHARED", "from-the-environment")
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [])
        return []

    wrapped = _for_granian(app)
    # granian's environ: the process environment, then the request's own keys on top
    request = {**os.environ, **wsgi_environ("/healthz"), "HTTP_X_SHARED": "from-the-client"}
    wrapped(request, lambda status, headers: None)
    assert "CVCP_TEST_SECRET" not in seen and "PATH" not in seen
    assert seen["PATH_INFO"] == "/healthz" and seen["HTTP_X_SHARED"] == "from-the-client"
