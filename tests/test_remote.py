"""The executor: local transport semantics, the SSH guard, error messages for bad connections."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fabfile.config import Host
from fabfile.errors import UserError
from fabfile.remote import CommandFailed, LocalTransport, SshTransport, Step, script


def local() -> LocalTransport:
    return LocalTransport(Host(address="localhost", transport="local"))


def test_run_counts_round_trips_and_captures_output() -> None:
    t = local()
    result = t.run(Step("echo", ("printf", "%s|", "a b", "$(id)")))
    assert result.stdout == "a b|$(id)|"
    assert t.round_trips == 1


def test_failed_change_raises_with_step_name_and_stderr() -> None:
    with pytest.raises(CommandFailed) as info:
        local().run(script("explode", 'echo "bad thing: $1" >&2; exit 3', "boom"))
    assert "step 'explode' failed (exit 3): bad thing: boom" in info.value.message


def test_probe_returns_failure_instead_of_raising() -> None:
    result = local().probe(Step("false", ("false",)))
    assert result.exit_code == 1 and not result.ok


def test_put_writes_atomically_with_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub dir" / "app.env"
    t = local()
    t.put(b"SECRET='x'\n", str(target), 0o600)
    assert target.read_bytes() == b"SECRET='x'\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(target.parent) == ["app.env"]
    assert t.round_trips == 1


def test_hostile_arguments_are_never_interpreted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"x; touch {marker}; $(touch {marker}) `touch {marker}`"
    local().run(script("echo", 'printf "%s" "$1"', hostile))
    assert not marker.exists()


def test_unit_tests_cannot_open_ssh() -> None:
    host = Host(address="127.0.0.1", port=1, known_hosts="/dev/null", host_key_policy="accept-new")
    with pytest.raises(RuntimeError, match="unit test tried to open an SSH connection"):
        SshTransport(host).run(Step("true", ("true",)))


def test_strict_policy_needs_a_known_hosts_file(tmp_path: Path) -> None:
    host = Host(address="127.0.0.1", port=2222, known_hosts=str(tmp_path / "missing"))
    with pytest.raises(UserError, match=r"known_hosts file .* does not exist"):
        SshTransport(host).run(Step("true", ("true",)))
