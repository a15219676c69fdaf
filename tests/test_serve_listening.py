"""The server says it listens once it accepts connections: granian's own "Listening at" comes before any
worker listens (connections refused for as long as the workers take to start), ours after one accepted."""

import socket
import sys
import time

from tests.processes import end, free_port, manage, site_env, spawn


def test_listening_is_said_once_a_connection_is_accepted(tmp_path):
    env = site_env(tmp_path / "site")
    manage(env, "migrate", "--verbosity", "0")
    port, log = free_port(), tmp_path / "server.log"
    server = spawn(
        [
            sys.executable,
            "-m",
            "controlplane.serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "info",
        ],
        env=env,
        log=log,
    )
    try:
        deadline = time.monotonic() + 90
        while "Listening at" not in log.read_text(errors="replace"):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[
                -2000:
            ]
            time.sleep(0.02)
        socket.create_connection(("127.0.0.1", port), timeout=1).close()  # refused would raise
        said = log.read_text(errors="replace")
        assert said.count("Listening at") == 1 and f"Listening at: http://127.0.0.1:{port}" in said
        assert said.index("Spawning worker") < said.index("Listening at")
    finally:
        end(server)
