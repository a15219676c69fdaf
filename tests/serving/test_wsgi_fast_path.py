"""Raw-body predict requests are answered in front of Django (serving.endpoints.PredictFastPath) exactly as the Django view
answers them; everything else still reaches Django."""

import json

import pytest
from django.test import Client

from controlplane.wsgi import application
from serving import services
from tests.factories import png
from tests.helpers import metric, post, wsgi_environ

pytestmark = pytest.mark.django_db(transaction=True)


def wsgi(path: str, body: bytes = b"", *, method="POST", query="", content_type="image/png", **headers):
    """Call the project's WSGI application as a server does."""
    environ = wsgi_environ(path, body, method=method, query=query, content_type=content_type, **headers)
    started = {}
    chunks = application(
        environ, lambda status, headers: started.update(status=status, headers=dict(headers))
    )
    body = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return int(started["status"].split()[0]), started["headers"], body


def comparable(answer: dict) -> dict:
    return {
        k: v for k, v in answer.items() if k not in ("prediction_id", "latency_ms", "timestamp", "cached")
    }


def test_fast_path_answers_as_the_django_view(model_with_versions):
    status, headers, body = wsgi("/v1/models/cats/predict", png(3))
    via_django = post(Client(), body=png(3))
    assert status == 200 and via_django.status_code == 200
    assert comparable(json.loads(body)) == comparable(via_django.json())
    assert headers["Content-Type"] == "application/json" and headers["Content-Length"] == str(len(body))
    for name in ("X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy"):
        assert headers[name] == via_django[name], name  # the headers SecurityMiddleware sets


@pytest.mark.parametrize(
    ("path", "query", "body", "status", "code"),
    [
        ("/v1/models/cats/predict", "version=abc", png(), 400, "bad_request"),
        ("/v1/models/cats/predict", "stage=staging", png(), 400, "bad_request"),
        ("/v1/models/cats/predict", "", b"", 400, "decode"),
        ("/v1/models/cats/predict", "", b"not an image", 400, "decode"),
        ("/v1/models/dogs/predict", "", png(), 404, "model_not_found"),
        ("/v1/models/cats/predict", "version=9", png(), 404, "not_found"),
    ],
)
def test_fast_path_errors_match_the_django_view(model_with_versions, path, query, body, status, code):
    got_status, _, got_body = wsgi(path, body, query=query)
    via_django = Client().post(f"{path}?{query}", data=body, content_type="image/png")
    assert (got_status, json.loads(got_body)) == (via_django.status_code, via_django.json())
    assert got_status == status and json.loads(got_body)["error"]["code"] == code


def test_oversize_body_is_refused_before_it_is_read(model_with_versions, settings):
    settings.SERVING_MAX_BODY_BYTES = 100
    before = metric("cvcp_errors_total", model="cats", type="too_large")
    status, _, body = wsgi("/v1/models/cats/predict", png())
    assert status == 413 and json.loads(body)["error"]["code"] == "too_large"
    assert metric("cvcp_errors_total", model="cats", type="too_large") == before + 1


def test_routing_key_and_version_reach_the_service(model_with_versions):
    status, _, body = wsgi("/v1/models/cats/predict", png(), query="version=2", HTTP_X_ROUTING_KEY="client-7")
    assert status == 200 and json.loads(body)["model_version"] == 2


def test_multipart_other_methods_and_other_paths_go_to_django(model_with_versions):
    boundary = "XyZ"
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + png(4)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _, body = wsgi(
        "/v1/models/cats/predict", multipart, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert status == 200 and json.loads(body)["model_version"] == 1
    status, headers, _ = wsgi("/v1/models/cats/predict", method="GET")
    assert status == 405 and "POST" in headers["Allow"]  # Django's require_POST
    status, _, body = wsgi("/healthz", method="GET")
    assert status == 200 and json.loads(body) == {"status": "alive"}


def test_an_unexpected_failure_is_json_and_logged(model_with_versions, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "predict", broken)
    status, _, body = wsgi("/v1/models/cats/predict", png())
    assert status == 500 and json.loads(body)["error"]["code"] == "internal"
    assert "a bug" in caplog.text


def test_under_https_settings_the_fast_path_still_serves_and_adds_hsts(model_with_versions, settings):
    """Production settings (SSL redirect, HSTS) keep the fast path: HTTPS requests are answered in front
    of Django with the HSTS header Django would add; plain HTTP ones go to Django, which redirects."""
    from django.core.wsgi import get_wsgi_application

    from serving.endpoints import PredictFastPath

    settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS = True, 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    app = PredictFastPath(get_wsgi_application())  # middleware read from these settings

    def call(**extra):
        environ = wsgi_environ(
            "/v1/models/cats/predict", png(5), method="POST", content_type="image/png", **extra
        )
        started = {}
        body = b"".join(
            app(environ, lambda status, headers: started.update(status=status, headers=dict(headers)))
        )
        return int(started["status"].split()[0]), started["headers"], body

    status, headers, _ = call()
    assert status == 301 and headers["Location"].startswith("https://")
    for extra in ({"wsgi.url_scheme": "https"}, {"HTTP_X_FORWARDED_PROTO": "https"}):
        status, headers, body = call(**extra)
        assert status == 200 and json.loads(body)["model_version"] == 1
        assert headers["Strict-Transport-Security"] == "max-age=3600"
