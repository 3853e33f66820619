"""The one error family of convcalc, and the exit status each member means."""

from __future__ import annotations


class ConvcalcError(ValueError):
    """A value a user gave (a size, a layer spec, a kernel, a file) cannot be used.

    The message names the value received and says what would be valid. The CLI
    prints it on one line and exits with `exit_code` (2: bad usage or value).
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class RuntimeFailure(ConvcalcError):
    """Something outside the user's values failed: unreadable file, unwritable output."""

    exit_code = 1
