"""The one exception type that reaches an operator as a message instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in input or an environmental fault with a known fix.

    Tasks turn it into `invoke.Exit(message, code)`: one clear message, non-zero exit,
    no traceback. The message says what is wrong and what to do.
    """

    def __init__(self, message: str, *, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message
