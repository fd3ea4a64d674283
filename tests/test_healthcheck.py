"""The web healthcheck: the Compose test per form, and the default check run for real in a
shell against a real HTTP server (exit codes as Docker reads them)."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fabfile import healthcheck
from fabfile.config import Config, load_config
from tests.helpers import DUMMY_SECRETS


def cfg_with(command: str | tuple[str, ...] | None = None, *, port: int = 8000,
             drain_file: str = "/tmp/drain") -> Config:
    cfg = load_config("prod", environ=DUMMY_SECRETS)
    check = dataclasses.replace(cfg.app.healthcheck, command=command)
    app = dataclasses.replace(cfg.app, healthcheck=check, port=port, drain_file=drain_file)
    return dataclasses.replace(cfg, app=app)


def test_default_is_python_urllib_behind_the_drain_file() -> None:
    test = healthcheck.compose_test(cfg_with())
    assert test[0] == "CMD-SHELL"
    assert test[1].startswith("test ! -e /tmp/drain && test ! -e /tmp/drain.hold && "
                              "{ python3 -c '")
    assert "urllib.request" in test[1] and "http://127.0.0.1:8000/health 2 ; } || exit 1" in test[1]
    assert healthcheck.probe(cfg_with()).program == "python3"


def test_shell_form_keeps_the_drain_file_test() -> None:
    test = healthcheck.compose_test(cfg_with("curl -fsS http://127.0.0.1:8000/health"))
    assert test == ("CMD-SHELL", "test ! -e /tmp/drain && test ! -e /tmp/drain.hold && "
                    "{ curl -fsS http://127.0.0.1:8000/health ; } || exit 1")
    assert healthcheck.hold_file(cfg_with("curl x")) == "/tmp/drain.hold"
    assert healthcheck.probe(cfg_with("LANG=C curl -fsS x")).program == "curl"


def test_exec_form_runs_as_given() -> None:
    cfg = cfg_with(("/healthcheck", "--port", "8000"))
    assert healthcheck.compose_test(cfg) == ("CMD", "/healthcheck", "--port", "8000")
    assert healthcheck.probe(cfg) == healthcheck.Probe("exec", ("/healthcheck", "--port", "8000"))
    assert healthcheck.probe(cfg).program == "/healthcheck"
    assert healthcheck.hold_file(cfg) is None, "no shell: nothing could lift a hold"


@pytest.mark.parametrize(("output", "program"), [
    ("sh: 1: python3: not found", "python3"),  # dash (Debian's /bin/sh)
    ("sh: curl: not found", "curl"),  # busybox
    ("bash: line 1: wget: command not found", "wget"),
    ('docker: Error response from daemon: failed to create task: exec: "/healthcheck": stat '
     "/healthcheck: no such file or directory: unknown.", "/healthcheck"),
])
def test_missing_program_named_from_the_shell_or_docker(output: str, program: str) -> None:
    check = healthcheck.probe(cfg_with(("/healthcheck",)))
    assert healthcheck.missing_program(output, check) == program


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _run(cfg: Config) -> int:
    """The rendered CMD-SHELL string in /bin/sh, as Docker runs it; its exit code."""
    kind, command = healthcheck.compose_test(cfg)
    assert kind == "CMD-SHELL"
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, timeout=20,
                          check=False).returncode


def test_default_check_exit_codes(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    drain = tmp_path / "drain"
    cfg = cfg_with(port=server.server_address[1], drain_file=str(drain))
    _Health.status = 200
    assert _run(cfg) == 0
    drain.touch()
    assert _run(cfg) == 1, "the drain file must fail the check"
    drain.unlink()
    hold = tmp_path / "drain.hold"
    hold.touch()
    assert _run(cfg) == 1, "the hold file must fail the check"
    hold.unlink()
    _Health.status = 503
    assert _run(cfg) == 1
    _Health.status = 200
    server.shutdown()
    server.server_close()
    assert _run(cfg) == 1, "a refused connection must fail the check"


def test_probe_without_the_drain_file_exits_127_when_the_program_is_missing() -> None:
    check = healthcheck.probe(cfg_with("no-such-health-tool --ping"))
    proc = subprocess.run(["/bin/sh", "-c", check.argv[0]], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 127
    assert healthcheck.missing_program(proc.stderr, check) == "no-such-health-tool"
