""".env.example names every environment variable the project reads, and only those: the settings module's
own reads (found in its source) and the few read elsewhere, listed here with who reads them."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READERS = {"env", "env_int", "env_float", "env_bool", "env_list"}
READ_ELSEWHERE = {
    "WEB_CONCURRENCY": "controlplane/serve.py",
    "PROMETHEUS_MULTIPROC_DIR": "prometheus_client, controlplane/serve.py",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "MLflow's client",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "MLflow's client",
}


def settings_reads() -> dict[str, str]:
    """Variable → the default as written in controlplane/settings.py (the source text of the argument)."""
    source = (ROOT / "controlplane" / "settings.py").read_text()
    found = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in READERS:
            name = node.args[0]
            if isinstance(name, ast.Name) and name.id == "name":
                continue  # the readers calling one another
            assert isinstance(name, ast.Constant), ast.get_source_segment(source, node)  # names are literal
            found[name.value] = ast.get_source_segment(source, node.args[1]) if len(node.args) > 1 else ""
    return found


def example() -> dict[str, str]:
    text = (ROOT / ".env.example").read_text()
    return {m[0]: m[1].strip() for m in re.findall(r"^([A-Z][A-Z0-9_]*)=([^#\n]*)", text, flags=re.M)}


def test_env_example_names_every_variable_read_and_no_other():
    read = set(settings_reads()) | set(READ_ELSEWHERE)
    listed = set(example())
    assert not read - listed, f"read but not in .env.example: {sorted(read - listed)}"
    assert not listed - read, f"in .env.example but read nowhere: {sorted(listed - read)}"


def test_env_example_values_are_the_defaults_the_code_uses():
    """A value written in .env.example is the code's own default (empty: the default is computed, or none)."""
    defaults = settings_reads()
    for name, value in example().items():
        default = defaults.get(name)
        try:
            written = ast.literal_eval(default) if default else None
        except ValueError:
            continue  # a computed default (a path under var/, one that depends on DEBUG) is described
        if value and written is not None:
            assert value.lower() == str(written).lower(), (name, value, default)
