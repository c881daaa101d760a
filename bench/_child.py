"""Run one benchmark variant in its own process (clean peak-memory figures) and read its result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

PREFIX = "RESULT "


def emit(result: dict[str, Any]) -> None:
    """In the child: print the result where :func:`run_child` finds it."""
    print(PREFIX + json.dumps(result))


def run_child(script: str, variant: str, extra: list[str]) -> dict[str, Any]:
    """Run ``script --variant VARIANT *extra`` with this interpreter; exit with its stderr if it fails."""
    out = subprocess.run([sys.executable, script, "--variant", variant, *extra],
                         capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = next((row for row in out.stdout.splitlines() if row.startswith(PREFIX)), None)
    if out.returncode != 0 or line is None:
        sys.exit(f"{variant} failed:\n{out.stderr[-4000:]}")
    return json.loads(line[len(PREFIX):])
