"""Value checks for config fields: each returns None when fine, else what was expected."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

Check = Callable[[object], str | None]

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_IMAGE = re.compile(
    r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_MEMORY = re.compile(r"^[1-9][0-9]*[kmg]$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ABS_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_REL_PATH = re.compile(r"^[A-Za-z0-9._-][A-Za-z0-9._/-]*$")
_ONE_PLATFORM = r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?"
_PLATFORM = re.compile(rf"^{_ONE_PLATFORM}(?:,{_ONE_PLATFORM})*$")
_QUERY = re.compile(r"^[A-Za-z0-9._~=&%+-]*$")
_EMAIL = re.compile(r"^[^@\s'\"`$;&|<>]+@[a-z0-9.-]+\.[a-z]{2,}$")


def domain(value: object) -> str | None:
    """A DNS name of at least two labels, lowercase, as Traefik's Host() rule takes it."""
    text = str(value)
    labels = text.split(".")
    ok = len(text) <= 253 and len(labels) >= 2 and all(_LABEL.match(label) for label in labels)
    if ok and not labels[-1].isdigit():
        return None
    return "a domain name such as api.example.com (lowercase letters, digits, hyphens, dots)"


def host_address(value: object) -> str | None:
    """A hostname or an IP address: nothing a shell or ssh_config could misread."""
    text = str(value)
    try:
        ipaddress.ip_address(text)
        return None
    except ValueError:
        pass
    labels = text.split(".")
    if len(text) <= 253 and all(_LABEL.match(label) for label in labels):
        return None
    return "a hostname or IP address such as 203.0.113.10 or vps1.example.com"


def ip_address(value: object) -> str | None:
    """An IP address (what `docker swarm init/join --advertise-addr` takes)."""
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return "an IP address such as 10.0.0.5 (the host's address on the swarm's network)"
    return None


def labels(value: object) -> str | None:
    """Docker node labels: dotted lowercase names, values without whitespace."""
    assert isinstance(value, dict)
    for key, item in value.items():
        if not re.match(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$", str(key)):
            return f"label names like region or acme.disk (got {key!r})"
        if not isinstance(item, str) or re.search(r"\s", item):
            return f"label values without whitespace ({key} has one)"
    return None


def name(value: object) -> str | None:
    return None if _NAME.match(str(value)) else "a lowercase name: letters, digits, '-' or '_'"


def unix_user(value: object) -> str | None:
    return None if _USER.match(str(value)) else "a Unix user name such as deploy"


def image(value: object) -> str | None:
    return None if _IMAGE.match(str(value)) else "an image name such as ghcr.io/acme/api"


def tag(value: object) -> str | None:
    return None if _TAG.match(str(value)) else "an image tag: letters, digits, '_', '.', '-'"


def memory(value: object) -> str | None:
    return None if _MEMORY.match(str(value)) else "a memory size such as 512m or 1g"


def positive(value: object) -> str | None:
    return None if isinstance(value, int | float) and value > 0 else "a number above 0"


def non_negative(value: object) -> str | None:
    return None if isinstance(value, int | float) and value >= 0 else "a number of 0 or more"


def stale_after(value: object) -> str | None:
    """Seconds without a heartbeat after which a lock's holder counts as dead."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 3:
        return None
    return "a whole number of seconds, 3 or more (a few heartbeats)"


def port(value: object) -> str | None:
    return None if isinstance(value, int) and 0 < value < 65536 else "a TCP port (1-65535)"


def command_part(value: object) -> str | None:
    """One word of an exec-form command, or a whole shell-form command: text, not empty."""
    text = str(value)
    if text.strip() and "\x00" not in text:
        return None
    return "a non-empty command (a string for the shell form, a list of words for exec form)"


def abs_path(value: object) -> str | None:
    return None if _ABS_PATH.match(str(value)) else "an absolute path of [A-Za-z0-9._/-]"


def project_path(value: object) -> str | None:
    """A path inside the project, relative to its root (where `environments/` lives)."""
    text = str(value)
    parts = text.split("/")
    if _REL_PATH.match(text) and ".." not in parts and not text.startswith("/"):
        return None
    return "a path relative to the project root, inside it (e.g. . or app/Dockerfile)"


def file_path(value: object) -> str | None:
    """A local file: absolute, or relative to the project root."""
    text = str(value)
    if _REL_PATH.match(text.lstrip("/")) or _ABS_PATH.match(text):
        return None
    return "a file path such as /etc/ssl/certs/ca-certificates.crt or certs/ca.pem"


def registry_server(value: object) -> str | None:
    """A registry's host[:port], as image names start with it (ghcr.io, 10.0.0.5:5000)."""
    host, _, port_text = str(value).partition(":")
    if host_address(host) is None and (not port_text or (port_text.isdigit()
                                                         and 0 < int(port_text) < 65536)):
        return None
    return "a registry host such as ghcr.io or registry.example.com:5000 (no scheme, no path)"


def platform(value: object) -> str | None:
    return None if _PLATFORM.match(str(value)) else "a platform such as linux/amd64"


def build_map(value: object) -> str | None:
    """Build args or build secrets: names of letters, digits and '_'; one-line values."""
    assert isinstance(value, dict)
    for key, item in value.items():
        if not _ENV_KEY.match(str(key)):
            return f"names of letters, digits and '_' such as PIP_INDEX (got {key!r})"
        if "\n" in str(item) or "\x00" in str(item):
            return f"one-line values ({key} has a line break)"
    return None


def url_path(value: object) -> str | None:
    return None if _URL_PATH.match(str(value)) else "a URL path such as /health"


def url_path_query(value: object) -> str | None:
    """A path with an optional query, as an HTTP request line carries it: /people?limit=1."""
    path, _, query = str(value).partition("?")
    if _URL_PATH.match(path) and _QUERY.match(query):
        return None
    return "a URL path such as /people?limit=1 (no spaces, quotes or shell characters)"


def email(value: object) -> str | None:
    return None if _EMAIL.match(str(value)) else "an e-mail address such as ops@example.com"


def env_values(value: object) -> str | None:
    """Env-file keys and values as Compose's env_file reads them literally (single-quoted)."""
    assert isinstance(value, dict)
    for key, item in value.items():
        if not _ENV_KEY.match(str(key)):
            return f"environment variable names like APP_MODE (got {key!r})"
        if isinstance(item, str) and ("'" in item or "\n" in item):
            return f"values without single quotes or newlines ({key} has one)"
    return None


def https_url(value: object) -> str | None:
    parts = urlsplit(str(value))
    return None if parts.scheme in ("http", "https") and parts.netloc else "an http(s) URL"


def postgres_url(text: str, *, require_tls: bool) -> str | None:
    """A libpq URL; managed databases must ask for TLS (sslmode=require or stricter)."""
    parts = urlsplit(text)
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
        return "a URL such as postgresql://user:password@db.example.com:5432/app?sslmode=require"
    if require_tls:
        mode = parse_qs(parts.query).get("sslmode", [""])[-1]
        if mode not in ("require", "verify-ca", "verify-full"):
            return ("a URL with ?sslmode=require (or verify-ca / verify-full): "
                    "managed databases need TLS")
    return None
