"""The error types every layer shares: bad input, and a cancelled piece of work.

Anything a user can fix (a wrong column name, an unreadable file, a target with one class)
raises `InputError`. The CLI turns it into exit code 2 and one line on stderr; the dashboard
shows it in an `st.error`. Any other exception is a bug in Equiscope.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input that the user can fix.

    `message` says what is wrong; `hint` says how to fix it. `str(error)` joins both into
    the single line shown to users.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message.rstrip(".")
        self.hint = hint.rstrip(".")
        super().__init__(str(self))

    def __str__(self) -> str:
        hint = self.hint if self.hint.endswith(("?", "!")) else f"{self.hint}." if self.hint else ""
        return f"{self.message}. {hint}" if hint else f"{self.message}."


class Cancelled(Exception):
    """Work stopped at a safe point because someone asked (a reviewer's cancel, SIGTERM).

    Raised by training loops, the worker pool and jobs when their `should_stop()` says so;
    the job worker records the run as cancelled, not failed. It lives here, beside
    `InputError`, so that learning and audit code need not know the job queue.
    """
