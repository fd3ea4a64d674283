"""Every shell script of the repository passes `shellcheck` (Debian's package) with no
finding, and every `disable` directive says why on its own line.

Shell scripts are the `.sh` files and the files whose shebang names a shell. The host
scripts under `fabfile/` have no shebang: they run as `sh -c BODY` (`fabfile/shell.py`), so
they are checked as POSIX sh, which is what Debian's dash runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

SHELLS = re.compile(rb"^#!\s*(?:/usr)?/bin/(?:env\s+)?(?:sh|bash|dash|ksh)\b")
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache",
             ".ruff_cache", ".pytest_cache", "build", "dist"}
DISABLE = re.compile(r"#\s*shellcheck\s+disable=(\S+)(.*)$")
RC_DISABLE = re.compile(r"^\s*disable=(\S+)(.*)$")


def _files(root: Path) -> list[Path]:
    """What git tracks, plus untracked files it does not ignore; every file without git."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        found = []
        for base, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
            found += [Path(base, n) for n in names]
        return found
    return [root / name for name in listed.decode().split("\0") if name]


def shell_scripts(root: Path = PROJECT_ROOT) -> list[Path]:
    scripts = []
    for path in _files(root):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as handle:
            head = handle.readline(200)
        if path.suffix == ".sh" or SHELLS.match(head):
            scripts.append(path)
    return sorted(scripts)


def has_shebang(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"#!"


def test_the_scripts_are_found() -> None:
    found = {str(p.relative_to(PROJECT_ROOT)) for p in shell_scripts()}
    assert {"fabfile/deploy/scripts/lock.sh", "fabfile/backup/scripts/restore.sh",
            "fabfile/cutover/scripts/site.sh", "scripts/bootstrap", ".ci/run",
            "testbed/app/serve"} <= found
    assert not any(name.startswith(".venv/") for name in found)


def test_shellcheck_finds_nothing() -> None:
    checker = shutil.which("shellcheck")
    assert checker, "shellcheck is missing: run scripts/bootstrap (apt-get install shellcheck)"
    scripts = shell_scripts()
    hosted = [str(p) for p in scripts if not has_shebang(p)]
    standalone = [str(p) for p in scripts if has_shebang(p)]
    findings = []
    for shell, paths in (("--shell=sh", hosted), ("", standalone)):
        if not paths:
            continue
        proc = subprocess.run([checker, "--format=gcc", *([shell] if shell else []), *paths],
                              capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
        findings += [line for line in proc.stdout.splitlines() if line.strip()]
        assert proc.returncode in (0, 1), proc.stderr
    assert not findings, "shellcheck:\n" + "\n".join(
        line.replace(str(PROJECT_ROOT) + "/", "") for line in findings)


def rc_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """shellcheck's per-directory settings (`.shellcheckrc`): their disables count too."""
    return sorted(p for p in _files(root) if p.name == ".shellcheckrc")


@pytest.mark.parametrize("path", shell_scripts() + rc_files(),
                         ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_every_disable_says_why(path: Path) -> None:
    pattern = RC_DISABLE if path.name == ".shellcheckrc" else DISABLE
    for number, line in enumerate(path.read_text("utf-8", "replace").splitlines(), start=1):
        match = pattern.search(line)
        if match:
            why = match.group(2).strip()
            assert why.startswith("#") and why.lstrip("# ").strip(), (
                f"{path.relative_to(PROJECT_ROOT)}:{number}: a shellcheck disable directive "
                "must say why on its line: `# shellcheck disable=SC1234  # because ...`")
