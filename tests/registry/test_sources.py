"""source_uri: MLflow URIs against the configured stores, local paths only inside the import folder,
the same refusal whether a path exists or not, the upload limit on what is fetched, lineage kept."""

import os

import pytest

from core.exceptions import ApplicationError
from modelspec.examples import tiny_classifier_onnx
from modelspec.metadata import metadata_parse
from registry import services
from registry.models import PromotionEvent
from tests.factories import METADATA, register, to_production
from tests.helpers import assert_error, token_client

pytestmark = pytest.mark.django_db


def from_source(uri, users, name="dogs"):
    return services.version_register(
        model_name=name, actor=users["engineer"], metadata=metadata_parse(METADATA), source_uri=uri
    )


def refusal(uri, users) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        from_source(uri, users)
    return refused.value


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """An empty working directory: MLflow's default stores would appear here if a request fell back to them."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_models_uri_by_version_and_by_alias_keeps_the_source_lineage(users, mlflow_client, cwd):
    register("cats", users["engineer"], seed=1)
    register("cats", users["engineer"], seed=2)
    to_production("cats", 2, users)
    source_run = mlflow_client.get_model_version("cats", "2").run_id
    by_version = from_source("models:/cats/2", users)
    by_alias = from_source("models:/cats@production", users)
    for registered in (by_version, by_alias):
        assert registered.version.source_run_id == source_run
        assert mlflow_client.get_model_version("dogs", str(registered.version.version)).tags[
            "cp.source_run_id"
        ] == (source_run)
    assert by_alias.version.tags["cp.sha256"] == by_version.version.tags["cp.sha256"]
    assert os.listdir(cwd) == []


def test_models_uri_with_unknown_alias_or_version_is_404(users, mlflow_client):
    register("cats", users["engineer"], seed=1)
    assert refusal("models:/cats@nope", users).http_status == 404
    assert refusal("models:/cats/7", users).http_status == 404
    assert not PromotionEvent.objects.filter(model__name="dogs").exists()


@pytest.mark.parametrize(
    "uri",
    [
        "/etc/passwd",
        "/etc/shadow",
        "/no/such/file.onnx",
        "file:///etc/passwd",
        "file:///",
        "/",
        "http://127.0.0.1:9/model.onnx",
        "https://example.invalid/model.onnx",
        "s3://bucket/model.onnx",
        "ftp://host/model.onnx",
        "mlflow-artifacts:/0/abc/artifacts/model",  # only with a tracking server
        "runs:/0123456789abcdef0123456789abcdef/../../../../etc/passwd",
        "relative/path.onnx",
        "runs:/0123456789abcdef/x\x00y",
    ],
)
def test_local_paths_and_foreign_schemes_get_one_and_the_same_400(uri, users, mlflow_client, cwd):
    refused = refusal(uri, users)
    assert (refused.http_status, refused.code) == (400, "source_refused")
    assert refused.message == refusal("/no/such/file.onnx", users).message  # no oracle for what exists
    assert os.listdir(cwd) == []
    assert mlflow_client.search_registered_models() == []


def test_import_folder_only_and_links_resolved_first(users, mlflow_client, tmp_path, settings):
    folder, outside = tmp_path / "import", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "exported").mkdir()
    (folder / "exported" / "classifier.onnx").write_bytes(tiny_classifier_onnx(seed=3))
    (outside / "secret.onnx").write_bytes(tiny_classifier_onnx(seed=4))
    (folder / "link.onnx").symlink_to(outside / "secret.onnx")
    settings.MODEL_IMPORT_DIR = str(folder)
    assert from_source(str(folder / "exported" / "classifier.onnx"), users).version.version == 1
    assert from_source((folder / "exported").as_uri(), users).version.version == 2  # its one .onnx file
    for uri in (str(folder / "link.onnx"), str(outside / "secret.onnx"), str(folder / ".." / "outside")):
        assert refusal(uri, users).code == "source_refused"


def test_the_upload_limit_applies_to_fetched_models(users, mlflow_client, settings):
    register("cats", users["engineer"], seed=1)
    settings.MODEL_UPLOAD_MAX_BYTES = 100
    refused = refusal("models:/cats/1", users)
    assert (refused.http_status, refused.code) == (413, "payload_too_large")


def test_api_answers_refusals_as_json_and_lists_mlflow_aliases(users, model_with_versions):
    eng = token_client(users["engineer"])
    for uri in ("/etc/shadow", "http://127.0.0.1:9/x.onnx", "https://example.invalid/m.onnx", "s3://b/k"):
        response = eng.post(
            "/api/v1/models/dogs/versions/", {"source_uri": uri, "metadata": METADATA}, format="json"
        )
        assert_error(response, 400, "source_refused")
    versions = eng.get("/api/v1/models/cats/").json()["versions"]
    assert {v["version"]: v["mlflow_aliases"] for v in versions}[1] == ["production"]


def test_an_unreachable_tracking_server_is_a_json_503_and_nothing_is_written(users, settings):
    from tests.helpers import free_port

    register("cats", users["engineer"], seed=1)
    settings.MLFLOW_TRACKING_URI = settings.MLFLOW_REGISTRY_URI = f"http://127.0.0.1:{free_port()}"
    eng = token_client(users["engineer"])
    for uri in (
        "models:/cats/1",
        "runs:/0123456789abcdef0123456789abcdef/model",
        "mlflow-artifacts:/0/r/artifacts/m",
    ):
        response = eng.post(
            "/api/v1/models/dogs/versions/", {"source_uri": uri, "metadata": METADATA}, format="json"
        )
        assert_error(response, 503, "registry_unavailable")
    assert not PromotionEvent.objects.filter(model__name="dogs").exists()
