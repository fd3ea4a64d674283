"""`inv certs.check` against a real TLS server on 127.0.0.1 serving certificates made here:
one expiring in 10 days, one valid for 90, one self-signed for the wrong name."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fabfile.checks import certs
from tests.checks.tls import Ca, Pem, make_ca, make_leaf, make_self_signed
from tests.checks.tlsserve import TlsServer, tls_server
from tests.checks.webhook import webhook
from tests.helpers import env_tree, run_inv
from tests.support.net import free_port

GOOD = "good.shipyard.test"
SOON = "soon.shipyard.test"
SELF = "self.shipyard.test"


@dataclass(frozen=True)
class Pki:
    ca: Ca
    good: Pem
    soon: Pem
    wrong_self_signed: Pem


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory)
    return Pki(
        ca=ca,
        good=make_leaf(directory, ca, [GOOD, "localhost"], days=90, stem="good"),
        soon=make_leaf(directory, ca, [SOON], days=10, stem="soon"),
        wrong_self_signed=make_self_signed(directory, ["wrong.example"], days=90, stem="self"),
    )


@pytest.fixture(scope="module")
def server(pki: Pki) -> Iterator[TlsServer]:
    """Picks the certificate by SNI: good (default, also `localhost`), soon, self-signed."""
    with tls_server(pki.good, {SOON: pki.soon, SELF: pki.wrong_self_signed}) as srv:
        yield srv


def endpoint(name: str, server: TlsServer) -> certs.Endpoint:
    return certs.Endpoint(name, "127.0.0.1", server.port)


NOW = datetime.now(UTC)


def test_a_valid_certificate_passes(pki: Pki, server: TlsServer) -> None:
    report = certs.probe(endpoint(GOOD, server), ca_file=str(pki.ca.pem))
    assert report.trusted and report.error is None and report.problems == ()
    assert report.issuer == "Shipyard Test CA (Shipyard Tests)"
    assert report.subject == GOOD and report.names == (GOOD, "localhost")
    assert report.days_left(NOW) in (89, 90)
    assert certs.assess(report, 15, NOW) == []


def test_a_certificate_expiring_in_10_days_fails_a_15_day_threshold(
        pki: Pki, server: TlsServer) -> None:
    report = certs.probe(endpoint(SOON, server), ca_file=str(pki.ca.pem))
    assert report.trusted and report.subject == SOON
    assert report.days_left(NOW) in (9, 10)
    problems = certs.assess(report, 15, NOW)
    assert len(problems) == 1
    assert problems[0].startswith(f"expires in {report.days_left(NOW)} days, on ")
    assert problems[0].endswith("(threshold 15 days)")
    assert certs.assess(report, 5, NOW) == []


def test_a_self_signed_certificate_for_another_name_fails_on_both_counts(
        pki: Pki, server: TlsServer) -> None:
    report = certs.probe(endpoint(SELF, server), ca_file=str(pki.ca.pem))
    assert not report.trusted and report.error is None
    assert report.subject == "wrong.example" and report.issuer == "wrong.example"
    assert report.not_after is not None
    assert certs.assess(report, 15, NOW) == [
        "self-signed certificate: not issued by a trusted CA",
        f"hostname mismatch: the certificate is for wrong.example, not {SELF}",
    ]


def test_an_unknown_ca_is_not_trusted(server: TlsServer) -> None:
    """Without --ca-file the test CA is unknown: the report still shows the certificate."""
    report = certs.probe(endpoint(GOOD, server))
    assert not report.trusted
    assert report.issuer == "Shipyard Test CA (Shipyard Tests)"
    assert report.problems == ("not trusted: unable to get local issuer certificate",)


def test_a_signed_certificate_for_another_name_is_a_hostname_mismatch(
        pki: Pki, server: TlsServer) -> None:
    report = certs.probe(endpoint("other.shipyard.test", server), ca_file=str(pki.ca.pem))
    assert certs.assess(report, 15, NOW) == [
        "hostname mismatch: the certificate is for good.shipyard.test, localhost, "
        "not other.shipyard.test"]


def test_no_server_is_a_handshake_failure() -> None:
    port = free_port()
    report = certs.probe(certs.Endpoint(GOOD, "127.0.0.1", port), timeout=2)
    assert report.error == f"connection to 127.0.0.1:{port} refused"
    assert certs.assess(report, 15, NOW) == [report.error]


@pytest.mark.parametrize(("name", "patterns", "expected"), [
    ("a.example.com", ["a.example.com"], True),
    ("A.Example.COM.", ["a.example.com"], True),
    ("a.example.com", ["*.example.com"], True),
    ("a.b.example.com", ["*.example.com"], False),
    ("example.com", ["*.example.com"], False),
    ("a.example.com", ["b.example.com", "*.other.com"], False),
    ("127.0.0.1", ["127.0.0.1"], False),
])
def test_hostname_matching(name: str, patterns: list[str], expected: bool) -> None:
    assert certs.name_matches(name, patterns, []) is expected


def test_ip_addresses_match_ip_names_only() -> None:
    assert certs.name_matches("127.0.0.1", [], [ipaddress.ip_address("127.0.0.1")])
    assert not certs.name_matches("127.0.0.2", [], [ipaddress.ip_address("127.0.0.1")])


@pytest.mark.parametrize(("url", "expected"), [
    ("https://example.com", certs.Endpoint("example.com", "example.com", 443)),
    ("https://example.com:8443/health", certs.Endpoint("example.com", "example.com", 8443)),
])
def test_parse_url(url: str, expected: certs.Endpoint) -> None:
    assert certs.parse_url(url) == expected


# --- the task, through the real `inv` CLI -----------------------------------------------------


def test_task_url_mode_prints_issuer_expiry_and_days_left(pki: Pki, server: TlsServer) -> None:
    proc = run_inv("certs.check", f"--url=https://localhost:{server.port}",
                   f"--ca-file={pki.ca.pem}", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Shipyard Test CA (Shipyard Tests)" in proc.stdout
    assert f"localhost via 127.0.0.1:{server.port}" not in proc.stdout
    assert f"localhost:{server.port}" in proc.stdout or "localhost" in proc.stdout
    assert "ok" in proc.stdout and ("89" in proc.stdout or "90" in proc.stdout)


def test_task_url_mode_fails_on_a_self_signed_wrong_name(pki: Pki) -> None:
    with tls_server(pki.wrong_self_signed) as bad:
        proc = run_inv("certs.check", f"--url=https://localhost:{bad.port}",
                       f"--ca-file={pki.ca.pem}", timeout=60)
    assert proc.returncode == 1
    assert "self-signed certificate" in proc.stdout
    assert "hostname mismatch: the certificate is for wrong.example, not localhost" in proc.stdout
    assert "1 of 1 certificate(s) failed the check" in proc.stderr


def cert_env(tmp_path: Path, domains: list[str]) -> Path:
    return env_tree(tmp_path, {"staging": {"domains": domains}})


def test_task_env_mode_fails_below_the_threshold_and_alerts_slack(
        pki: Pki, server: TlsServer, tmp_path: Path) -> None:
    root = cert_env(tmp_path, [GOOD, SOON])
    with webhook() as hook:
        proc = run_inv("certs.check", "--env=staging", "--warn-days=15",
                       f"--connect=127.0.0.1:{server.port}", f"--ca-file={pki.ca.pem}",
                       env_dir=root, extra_env={"SLACK_WEBHOOK_URL": hook.url}, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{GOOD} via 127.0.0.1:{server.port}" in proc.stdout
    assert "(threshold 15 days)" in proc.stdout
    assert "1 of 2 certificate(s) failed the check" in proc.stderr
    assert len(hook.payloads) == 1
    text = hook.payloads[0]["text"]
    assert text.startswith(":warning: [roster/staging] Check failed: certificates "
                           "(`inv certs.check --env=staging`)\n")
    assert SOON in text and "expires in" in text and GOOD not in text
    assert text.endswith(f"\n   fix: {certs.RENEWAL_FIX}")


def test_task_env_mode_passes_with_a_lower_threshold_and_stays_quiet(
        pki: Pki, server: TlsServer, tmp_path: Path) -> None:
    root = cert_env(tmp_path, [GOOD, SOON])
    with webhook() as hook:
        proc = run_inv("certs.check", "--env=staging", "--warn-days=5",
                       f"--connect=127.0.0.1:{server.port}", f"--ca-file={pki.ca.pem}",
                       env_dir=root, extra_env={"SLACK_WEBHOOK_URL": hook.url}, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 certificate(s) valid for at least 5 more days" in proc.stdout
    assert hook.requests == []


def test_task_env_mode_uses_the_environments_threshold_and_ca(
        pki: Pki, server: TlsServer, tmp_path: Path) -> None:
    root = env_tree(tmp_path, {"staging": {
        "domains": [SOON], "checks": {"cert_warn_days": 11, "ca_file": str(pki.ca.pem)}}})
    proc = run_inv("certs.check", "--env=staging", f"--connect=127.0.0.1:{server.port}",
                   env_dir=root, timeout=60)
    assert proc.returncode == 1
    assert "(threshold 11 days)" in proc.stdout
    assert "no Slack alert sent: the secret SLACK_WEBHOOK_URL is not set" in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    ((), "give --env=ENV to check its domains, or --url=https://HOST[:PORT]"),
    (("--url=http://example.com",), "--url expects https://HOST[:PORT]"),
    (("--env=staging", "--warn-days=soon"), "--warn-days expects a whole number of days"),
    (("--env=staging", "--connect=a:b:c:d"), "--connect expects HOST, HOST:PORT or [IPv6]:PORT"),
    (("--url=https://localhost:1", "--ca-file=/nonexistent/ca.pem"),
     "cannot load the CA file /nonexistent/ca.pem"),
])
def test_task_operator_mistakes_are_clear(args: tuple[str, ...], message: str) -> None:
    proc = run_inv("certs.check", *args, timeout=60)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


# --- which endpoints an environment's check dials, and the fix for each failure -----------------


def test_an_environment_is_checked_on_every_host() -> None:
    """Each domain on each host's address, so a host whose renewal failed is seen even while
    DNS points at another."""
    from fabfile.config import load_config
    from fabfile.tasks.certs import endpoints_for

    cfg = load_config("prod", environ={}, placeholder_secrets=True)
    found = endpoints_for(cfg, "", "")
    assert [e.label for e in found] == [f"{domain} via {host.address}" for host in cfg.hosts
                                        for domain in cfg.domains]
    assert len(found) == 6 and {e.port for e in found} == {443}
    assert [e.label for e in endpoints_for(cfg, "", "10.0.0.5:8443")] == [
        f"{domain} via 10.0.0.5:8443" for domain in cfg.domains]


def test_an_environment_without_traefik_serves_no_certificates(tmp_path: Path) -> None:
    proc = run_inv("certs.check", "--env=local", env_dir=env_tree(tmp_path), timeout=60)
    assert proc.returncode == 1
    assert "Traefik is disabled in 'local', so its hosts serve no certificates" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("report", "fix"), [
    (certs.CertReport(certs.Endpoint(GOOD, "203.0.113.10"), error="connection refused"),
     certs.CONNECT_FIX),
    (certs.CertReport(certs.Endpoint(GOOD, "203.0.113.10"),
                      problems=("not trusted: unable to get local issuer certificate",)),
     certs.CA_FIX),
    (certs.CertReport(certs.Endpoint(GOOD, "203.0.113.10"),
                      problems=("self-signed certificate: not issued by a trusted CA",)),
     certs.RENEWAL_FIX),
    (certs.CertReport(certs.Endpoint(GOOD, "203.0.113.10"), not_after=NOW), certs.RENEWAL_FIX),
])
def test_each_failure_gets_its_fix(report: certs.CertReport, fix: str) -> None:
    assert certs.fix(report) == fix
