"""docs/api.md lists every error code the code raises, as the code raises it (read from the source)."""

from controlplane.management.commands.error_codes import DOC, doc_with_table, error_codes


def test_docs_api_lists_every_error_code_the_code_raises():
    text = DOC.read_text()
    assert doc_with_table(text) == text, "docs/api.md is stale: run `manage.py error_codes --write`"
    codes = {entry.code: entry for entry in error_codes()}
    assert codes["invalid_webhook"].statuses == {400} and codes["stale_state"].statuses == {409}
    assert (
        codes["registry_unavailable"].statuses == {503} and "MLflow" in codes["registry_unavailable"].example
    )
    assert all(f"| `{code}` |" in text for code in codes)
