"""TLS certificates: a handshake with SNI, chain and hostname verified, the certificate read.

When verification fails, a second handshake that verifies nothing fetches the certificate
anyway, so the report can still say who issued it, for which names and until when, and
name every reason it is not trusted (self-signed, hostname mismatch, unknown issuer).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from fabfile.config.checks import host_address
from fabfile.errors import UserError

HTTPS_PORT = 443

RENEWAL_FIX = ("Traefik renews Let's Encrypt certificates 30 days before expiry: read its log on "
               "the host for ACME errors, and check that DNS and ports 80/443 reach it")
CA_FIX = ("if a private or staging CA issued it, trust that CA with checks.ca_file (for a "
          "staging environment: Let's Encrypt's staging roots)")
CONNECT_FIX = "check that the host is up and that Traefik answers HTTPS on port 443"


@dataclass(frozen=True)
class Endpoint:
    """`name` is sent as SNI and verified against the certificate; `address` is dialled."""

    name: str
    address: str
    port: int = HTTPS_PORT

    @property
    def label(self) -> str:
        if self.port == HTTPS_PORT:
            return self.name if self.address == self.name else f"{self.name} via {self.address}"
        return f"{self.name} via {_join_host_port(self.address, self.port)}"


@dataclass(frozen=True)
class CertReport:
    """What one handshake showed. `error` means no certificate was seen at all."""

    endpoint: Endpoint
    subject: str = ""
    issuer: str = ""
    not_after: datetime | None = None
    names: tuple[str, ...] = ()
    trusted: bool = False
    problems: tuple[str, ...] = field(default=())
    error: str | None = None

    def days_left(self, now: datetime) -> int | None:
        if self.not_after is None:
            return None
        return int((self.not_after - now).total_seconds() // 86400)


def assess(report: CertReport, warn_days: int, now: datetime) -> list[str]:
    """Every reason this certificate fails the check; empty when it passes."""
    if report.error is not None:
        return [report.error]
    problems = list(report.problems)
    left = report.days_left(now)
    if left is not None and report.not_after is not None:
        day = report.not_after.date().isoformat()
        if left < 0:
            problems.append(f"expired on {day}")
        elif left < warn_days:
            problems.append(f"expires in {left} days, on {day} (threshold {warn_days} days)")
    return problems


def fix(report: CertReport) -> str:
    """What to do about a certificate that failed the check."""
    if report.error is not None:
        return CONNECT_FIX
    if any(problem.startswith("not trusted: ") for problem in report.problems):
        return CA_FIX
    return RENEWAL_FIX


def on_host(domains: Iterable[str], address: str) -> list[Endpoint]:
    """Each domain as served by one host: dialled at its address on 443, the domain as SNI,
    so every host's certificate is seen whichever host DNS points at."""
    return [Endpoint(domain, address) for domain in domains]


def parse_url(url: str) -> Endpoint:
    """`https://HOST[:PORT]` as an endpoint (any path is ignored)."""
    parts = urlsplit(url)
    try:
        port = parts.port or HTTPS_PORT
    except ValueError:
        raise UserError(f"--url {url!r} has an invalid port") from None
    if parts.scheme != "https" or not parts.hostname:
        raise UserError(f"--url expects https://HOST[:PORT], got {url!r}")
    return Endpoint(parts.hostname, parts.hostname, port)


def parse_connect(value: str) -> tuple[str, int]:
    """`HOST`, `HOST:PORT` or `[IPv6]:PORT` for --connect."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host or (port_text and not port_text.isdigit()) or host_address(host):
        raise UserError(f"--connect expects HOST, HOST:PORT or [IPv6]:PORT, got {value!r}")
    port = int(port_text) if port_text else HTTPS_PORT
    if not 0 < port < 65536:
        raise UserError(f"--connect port {port} is not a TCP port")
    return host, port


def verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trusted CAs plus `ca_file`; chain and hostname verified."""
    context = ssl.create_default_context()
    if ca_file:
        path = Path(ca_file).expanduser()
        try:
            context.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise UserError(f"cannot load the CA file {path}: {exc}") from None
    return context


def _inspecting_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _handshake(endpoint: Endpoint, context: ssl.SSLContext, timeout: float) -> bytes:
    with socket.create_connection((endpoint.address, endpoint.port), timeout=timeout) as sock, \
            context.wrap_socket(sock, server_hostname=endpoint.name) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server sent no certificate")
    return der


def _connection_error(endpoint: Endpoint, exc: BaseException, timeout: float) -> str:
    where = _join_host_port(endpoint.address, endpoint.port)
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {endpoint.address}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no TLS answer from {where} within {timeout:g}s"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {where} refused"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed: {exc.reason or exc}"
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"cannot connect to {where}: {reason}"


def probe(endpoint: Endpoint, *, ca_file: str | None = None, timeout: float = 10.0,
          context: ssl.SSLContext | None = None) -> CertReport:
    """Handshake with `endpoint`; report the certificate and why it is not trusted, if so."""
    context = context or verifying_context(ca_file)
    try:
        der = _handshake(endpoint, context, timeout)
        return _report(endpoint, x509.load_der_x509_certificate(der), trusted=True, why=None)
    except ssl.SSLCertVerificationError as exc:
        why = str(exc.verify_message or exc.reason or exc)
    except (OSError, ssl.SSLError) as exc:
        return CertReport(endpoint, error=_connection_error(endpoint, exc, timeout))
    try:
        der = _handshake(endpoint, _inspecting_context(), timeout)
    except (OSError, ssl.SSLError) as exc:
        return CertReport(endpoint, problems=(f"not trusted: {why}",),
                          error=_connection_error(endpoint, exc, timeout))
    return _report(endpoint, x509.load_der_x509_certificate(der), trusted=False, why=why)


def probe_all(endpoints: Iterable[Endpoint], *, ca_file: str | None = None,
              timeout: float = 10.0) -> list[CertReport]:
    """`probe` each endpoint concurrently; results in the order given."""
    items = list(endpoints)
    if not items:
        return []
    context = verifying_context(ca_file)
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        return list(pool.map(lambda e: probe(e, timeout=timeout, context=context), items))


def _report(endpoint: Endpoint, cert: x509.Certificate, *, trusted: bool,
            why: str | None) -> CertReport:
    dns_names, ip_names = _subject_alt_names(cert)
    names = tuple(dns_names) + tuple(str(ip) for ip in ip_names)
    problems: list[str] = []
    if not trusted:
        self_signed = _is_self_signed(cert)
        mismatch = not name_matches(endpoint.name, dns_names, ip_names)
        if self_signed:
            problems.append("self-signed certificate: not issued by a trusted CA")
        elif why and not _explained_elsewhere(why):
            problems.append(f"not trusted: {why}")
        if mismatch:
            shown = ", ".join(names) or _common_name(cert.subject) or "no names"
            problems.append(f"hostname mismatch: the certificate is for {shown}, "
                            f"not {endpoint.name}")
        if not problems and why and "expired" not in why and "not yet valid" not in why:
            problems.append(f"not trusted: {why}")
        if cert.not_valid_before_utc > datetime.now(UTC):
            problems.append(f"not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    return CertReport(
        endpoint=endpoint,
        subject=_common_name(cert.subject) or cert.subject.rfc4514_string(),
        issuer=_issuer_label(cert),
        not_after=cert.not_valid_after_utc,
        names=names,
        trusted=trusted,
        problems=tuple(problems),
    )


def _explained_elsewhere(why: str) -> bool:
    """OpenSSL reasons that the report states in its own words (names, dates)."""
    text = why.lower()
    return any(key in text for key in ("mismatch", "expired", "not yet valid"))


def name_matches(name: str, dns_names: Iterable[str],
                 ip_names: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    """RFC 6125 matching: exact names, or one `*` as the whole leftmost label."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None:
        return address in set(ip_names)
    host = name.lower().rstrip(".")
    for pattern in dns_names:
        wanted = pattern.lower().rstrip(".")
        if wanted.startswith("*."):
            suffix = wanted[1:]
            head = host[: -len(suffix)]
            if host.endswith(suffix) and head and "." not in head:
                return True
        elif wanted == host:
            return True
    return False


def _subject_alt_names(
    cert: x509.Certificate,
) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    ips = [ip for ip in san.get_values_for_type(x509.IPAddress)
           if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)]
    return san.get_values_for_type(x509.DNSName), ips


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def _issuer_label(cert: x509.Certificate) -> str:
    cn = _common_name(cert.issuer)
    orgs = cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    org = str(orgs[0].value) if orgs else ""
    if cn and org and org not in cn:
        return f"{cn} ({org})"
    return cn or org or cert.issuer.rfc4514_string()


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
