"""Secrets: named in YAML, supplied by the process environment or a git-ignored `.env.<env>`.

A `Secret` prints as `***` wherever it ends up (repr, str, f-strings, rich tables); only
`reveal()` gives the value, and only templates written to hosts with mode 0600 call it.
"""

from __future__ import annotations

import os
import re
import secrets as _random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REDACTED = "***"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KNOWN_VALUES: set[str] = set()


def redact(text: str) -> str:
    """Replace every secret value this process has loaded with `***` (for messages and logs)."""
    for value in sorted(_KNOWN_VALUES, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


class Secret:
    """A secret value that never renders itself; `name` is the variable it came from."""

    __slots__ = ("_value", "name", "placeholder")

    def __init__(self, name: str, value: str, *, placeholder: bool = False) -> None:
        self.name = name
        self._value = value
        self.placeholder = placeholder
        if len(value) >= 4:
            _KNOWN_VALUES.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name}={REDACTED})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.name, self._value) == (other.name, other._value)

    def __hash__(self) -> int:
        return hash(self.name)


@dataclass(frozen=True)
class SecretRef:
    """How YAML names a secret: `{secret: VAR}`; `generate: true` makes one for local use."""

    var: str
    generate: bool = False


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a `.env` file: `KEY=value` lines, `#` comments, optional matching quotes."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not ENV_NAME.match(key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def append_dotenv(path: Path, key: str, value: str) -> None:
    """Add one generated secret to a git-ignored `.env.<env>` file, kept at mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(f"{key}={value}\n")
    os.chmod(path, 0o600)


class SecretSource:
    """Looks secrets up in the process environment first, then in `.env.<env>`."""

    def __init__(self, environ: Mapping[str, str], dotenv: Path, *, placeholders: bool) -> None:
        self.environ = environ
        self.dotenv = dotenv
        self.file_values = read_dotenv(dotenv)
        self.placeholders = placeholders

    def lookup(self, ref: SecretRef) -> Secret | None:
        """The secret's value, a generated one, a placeholder, or None when it is missing."""
        value = self.environ.get(ref.var, self.file_values.get(ref.var))
        if value:
            return Secret(ref.var, value)
        if ref.generate:
            value = _random.token_urlsafe(24)
            append_dotenv(self.dotenv, ref.var, value)
            self.file_values[ref.var] = value
            return Secret(ref.var, value)
        if self.placeholders:
            return Secret(ref.var, f"placeholder-{ref.var.lower()}", placeholder=True)
        return None
