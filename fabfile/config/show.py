"""The resolved configuration as plain data, secrets shown only by the variable they come from."""

from __future__ import annotations

import dataclasses
from typing import Any

from .model import Config
from .secrets import REDACTED, Secret


def redacted(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, every Secret to `*** (from VAR)`."""
    if isinstance(value, Secret):
        return f"{REDACTED} (placeholder for {value.name})" if value.placeholder \
            else f"{REDACTED} (from {value.name})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: redacted(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    return value


def as_dict(cfg: Config) -> dict[str, Any]:
    data: dict[str, Any] = redacted(cfg)
    return data
