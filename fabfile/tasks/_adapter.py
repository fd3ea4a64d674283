"""What every task shares: turning UserError into a clean `invoke.Exit`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from invoke.exceptions import Exit

from fabfile.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Decorate a task body so a UserError exits non-zero with its message and no traceback.

    Place it under `@task`; Invoke reads the signature through `functools.wraps`.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            # Imported here: `fabfile.config` (which `secrets` belongs to) is not needed to
            # list tasks or show their help.
            from fabfile.config.secrets import redact

            raise Exit(redact(f"error: {exc.message}"), code=exc.code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper  # type: ignore[return-value]
