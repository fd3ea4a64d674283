"""The tasks' entrypoint, run for real with `sh`: it keeps the app serving for the drain time
after SIGTERM, then passes the signal on."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from fabfile.swarm.scripts import body

APP = ('trap \'echo "term at $(date +%s.%N)" >> "$0"; exit 7\' TERM; '
       'echo started >> "$0"; while :; do sleep 0.05; done')


def start(tmp_path: Path, drain: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "app.log"
    proc = subprocess.Popen(["sh", "-c", body("entrypoint"), "entrypoint", drain,
                             "sh", "-c", APP, str(log)])
    deadline = time.monotonic() + 5
    while not log.exists():
        assert time.monotonic() < deadline, "the app never started"
        time.sleep(0.02)
    return proc, log


def test_sigterm_drains_first_then_reaches_the_app(tmp_path: Path) -> None:
    proc, log = start(tmp_path, "1")
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert proc.poll() is None and "term" not in log.read_text()
    assert proc.wait(10) == 7
    term_at = float(log.read_text().split("term at ")[1])
    assert 0.9 <= term_at - sent < 3


def test_the_apps_exit_code_passes_through(tmp_path: Path) -> None:
    proc = subprocess.run(["sh", "-c", body("entrypoint"), "entrypoint", "5",
                           "sh", "-c", "exit 3"], timeout=10, check=False)
    assert proc.returncode == 3
