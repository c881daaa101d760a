"""The one user-facing error type.

Everything a user can get wrong (a file, a line, a config key, a model reference) is raised as a
:class:`HarnessError` that says *what* is wrong, *where*, and *what to do*. The CLI prints it without
a traceback and exits with code 2.
"""

from __future__ import annotations

__all__ = ["HarnessError", "EXIT_USER_ERROR"]

EXIT_USER_ERROR = 2


class HarnessError(Exception):
    """A problem the user can fix.

    Args:
        message: what is wrong, in plain words (may span lines, e.g. one per config error).
        where: the file, ``file:line``, or config key the problem is at.
        hint: what to do about it.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text
