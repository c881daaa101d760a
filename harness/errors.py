"""The one user-facing error type.

Everything a user can get wrong (a file, a line, a config key, a model reference) is raised as a
:class:`HarnessError` that says *what* is wrong, *where*, and *what to do*. The CLI prints it without
a traceback and exits with code 2.
"""

from __future__ import annotations

import errno
import traceback
from pathlib import Path

__all__ = ["HarnessError", "EXIT_ERROR", "EXIT_USER_ERROR", "EXIT_REJECTED", "EXIT_WAITING", "EXIT_CODES", "describe",
           "stage_failure"]

# Every command's exit codes (``harness --help`` and the README list them).
EXIT_ERROR = 1       # something broke: a crashed stage, a library's error, a check that found tampering
EXIT_USER_ERROR = 2  # bad input: a config key, a file, a model reference; nothing was half-written
EXIT_REJECTED = 3    # the gate did not pass the candidate (harness gate, harness cycle)
EXIT_WAITING = 4     # the cycle paused: reviewers have not finished labeling
EXIT_CODES = {0: "done (promoted, awaiting sign-off, or a command that finished)", EXIT_ERROR: "error (a stage crashed)",
              EXIT_USER_ERROR: "bad input", EXIT_REJECTED: "rejected by the gate",
              EXIT_WAITING: "paused, waiting for reviewers", 130: "interrupted"}


class HarnessError(Exception):
    """A problem the user can fix.

    Args:
        message: what is wrong, in plain words (may span lines, e.g. one per config error).
        where: the file, ``file:line``, or config key the problem is at.
        hint: what to do about it.
    """

    exit_code: int = EXIT_USER_ERROR

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None,
                 exit_code: int = EXIT_USER_ERROR):
        self.message = message
        self.where = where
        self.hint = hint
        self.exit_code = exit_code
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


def describe(exc: BaseException) -> str:
    """One line for a failure, as the cycle's summary table shows it."""
    if isinstance(exc, HarnessError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


def stage_failure(stage: str, exc: BaseException, *, run_id: str | None, run_dir: Path, error_log: Path) -> BaseException:
    """What a failed stage raises to the user: one message saying where the cycle stopped and how it
    resumes: exit code 2 for a problem in the input (a HarnessError), 1 for a crash or a full disk;
    ``exc`` itself for an interrupt."""
    resume = f"harness cycle --resume {run_id}"
    if isinstance(exc, KeyboardInterrupt):
        from harness import log as _log

        _log.warn(f"interrupted during {stage}; finished stages are kept: '{resume}' continues at {stage}")
        return exc
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what = "the disk is full" if exc.errno != errno.EFBIG else "a file grew past the allowed size"
        return HarnessError(f"the cycle stopped at stage '{stage}': {what} ({exc.strerror}) while writing "
                            f"{exc.filename or 'an artifact'}; nothing was half-written",
                            hint=f"free space under {run_dir}, then '{resume}' continues at {stage}",
                            exit_code=EXIT_ERROR)
    if isinstance(exc, HarnessError):
        return HarnessError(f"the cycle stopped at stage '{stage}': {exc.message}",
                            where=exc.where, hint=f"{exc.hint + '; then ' if exc.hint else 'fix it, then '}'{resume}' "
                                                  f"continues at {stage} (finished stages are not redone)",
                            exit_code=exc.exit_code)
    if not isinstance(exc, Exception):  # SystemExit and the like pass through
        return exc
    # An unexpected error (a bug, or a library's): a one-line report and exit code 1 (never read as bad
    # input, 2, or the gate's rejection, 3); the traceback goes to a file for a bug report.
    log: Path | None = error_log
    try:
        log.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    except OSError:
        log = None
    return HarnessError(f"the cycle stopped at stage '{stage}': {describe(exc)}",
                        hint=(f"the traceback is in {log}; " if log else "") + f"'{resume}' continues at {stage} "
                             "(finished stages are not redone)", exit_code=EXIT_ERROR)
