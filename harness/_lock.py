"""Advisory inter-process file locks (POSIX ``flock``).

``file_lock(path)`` waits for the lock; with ``timeout`` (seconds; 0 = do not wait) it gives up with a
:class:`LockHeld` naming the process that holds it (the holder writes its pid and command line into the
lock file). The lock is re-entrant within a thread: a function holding it may call another that takes
it again (the registry's consistency check inside a promotion) without deadlocking on itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from harness.errors import HarnessError

__all__ = ["file_lock", "run_lock", "run_lock_path", "LockHeld", "holder"]

_held: dict[tuple[str, int], int] = {}  # (lock path, thread) -> depth, in this process
_guard = threading.Lock()


class LockHeld(HarnessError):
    """Another process holds the lock past the timeout."""


def holder(path: str | os.PathLike) -> str:
    """Who holds (or last held) a lock: 'pid N (command)', or 'another process'."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "another process"


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, timeout: float | None = None, what: str = "",
              hint: str = "", exit_code: int = 2) -> Iterator[None]:
    path = Path(path)
    key = (str(path.resolve()), threading.get_ident())
    with _guard:
        if _held.get(key):
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # it names the holder's command line: owner only
    with os.fdopen(fd, "r+", encoding="utf-8") as fh:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (fcntl.LOCK_NB if deadline is not None else 0))
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:  # type: ignore[operator]
                    waited = f" for {timeout:g} s" if timeout else ""
                    raise LockHeld(f"{what or path} is held by {holder(path)}{waited}; nothing was changed",
                                   hint=hint or f"wait for it to finish (or stop it), then run the command again; "
                                                f"the lock is {path}", exit_code=exit_code) from None
                time.sleep(0.05)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} ({' '.join(sys.argv)[:200]})\n")
        fh.flush()
        with _guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def run_lock_path(run_dir: Path) -> Path:
    """Where the lock of a run lives: under ``$HARNESS_HOME/locks``, keyed by the run folder's absolute path,
    so taking it writes nothing under ``run.root`` (a cycle refused for bad input leaves no folder)."""
    import hashlib

    from harness.models import harness_home

    key = hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]
    return harness_home() / "locks" / f"run-{Path(run_dir).name}-{key}.lock"


def run_lock(run_dir: Path, run_id: str | None) -> contextlib.AbstractContextManager[None]:
    """One writer per run: a second cycle on the same run id stops at once, naming the process holding it."""
    return file_lock(run_lock_path(run_dir), timeout=0, what=f"run '{run_id}' ({run_dir})",
                     hint="one cycle writes a run at a time: wait for that one to finish (or stop it), or use another run.id")
