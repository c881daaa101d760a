"""What the audit report cites, pinned: the SHA-256 of every artifact it was built from, the ledger's head
when it was written, the hashes of its own HTML and PDF, and (with ``$HARNESS_LEDGER_KEY`` set) an
HMAC-SHA256 signature of the JSON. ``verify`` re-hashes all of it and names what changed.

Paths are shown relative to the run folder (``root: run``) or to the project folder the report was
written from (``root: project``); files elsewhere are shown under ``$HARNESS_HOME`` or ``~``, never as a
machine's absolute path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from harness import ledger
from harness.artifacts import sha256_file
from harness.errors import HarnessError

__all__ = ["Cited", "shown", "canonical", "sign", "signature_ok", "verify"]

SIGNATURE_ALGORITHM = "HMAC-SHA256"


def _inside(path: Path, root: Path) -> Path | None:
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return None


def shown(path: str | os.PathLike | None, run_dir: Path) -> str | None:
    """A path as a reader can follow it: relative to the run folder, else to the project (the current
    folder), else under $HARNESS_HOME or ~; a reference that is not a local path (a hub id, builtin:...)
    is returned as it is."""
    if path is None:
        return None
    text = str(path)
    p = Path(text)
    if not p.is_absolute():
        return text
    from harness.models import harness_home

    for root, prefix in ((run_dir, ""), (Path.cwd(), ""), (harness_home(), "$HARNESS_HOME/"), (Path.home(), "~/")):
        rel = _inside(p, root)
        if rel is not None:
            return prefix + (rel.as_posix() or ".")
    return text


class Cited:
    """The files a report was built from, gathered while it is built (each one once)."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self._files: dict[Path, None] = {}

    def add(self, path: Path | None) -> Path | None:
        if path is not None and Path(path).is_file():
            self._files[Path(path).resolve()] = None
        return path

    def entries(self) -> list[dict[str, Any]]:
        out = []
        for path in self._files:
            rel = _inside(path, self.run_dir)
            root, name = ("run", rel) if rel is not None else ("project", _inside(path, Path.cwd()))
            if name is None:  # outside the run and the project (e.g. an evaluation folder elsewhere): by its shown name
                root, name = "elsewhere", Path(shown(path, self.run_dir) or path)
            out.append({"path": name.as_posix(), "root": root, "sha256": sha256_file(path), "bytes": path.stat().st_size})
        return sorted(out, key=lambda e: (e["root"], e["path"]))


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the report's JSON without its signature, keys sorted, compact."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(doc: dict[str, Any]) -> dict[str, Any] | None:
    key = ledger.ledger_key()
    if key is None:
        return None
    return {"algorithm": SIGNATURE_ALGORITHM, "key_env": ledger.KEY_ENV,
            "value": hmac.new(key, canonical(doc), hashlib.sha256).hexdigest()}


def signature_ok(doc: dict[str, Any], key: bytes) -> bool:
    sig = doc.get("signature") or {}
    return hmac.compare_digest(str(sig.get("value", "")), hmac.new(key, canonical(doc), hashlib.sha256).hexdigest())


def _resolve(entry: dict[str, Any], run_dir: Path) -> Path | None:
    if entry["root"] == "run":
        return run_dir / entry["path"]
    if entry["root"] == "project":
        return Path.cwd() / entry["path"]
    text = entry["path"]
    if text.startswith("$HARNESS_HOME/"):
        from harness.models import harness_home

        return harness_home() / text[len("$HARNESS_HOME/"):]
    return Path(text).expanduser()


def verify(run_dir: Path) -> dict[str, Any]:
    """Re-hash what ``<run>/report/audit.json`` cites: each file unchanged, changed or missing; the report's
    own HTML and PDF; the ledger still holding the head the report recorded, and intact; the signature.
    ``ok`` is false when anything changed."""
    path = run_dir / "report" / "audit.json"
    if not path.is_file():
        raise HarnessError(f"{path} does not exist: this run has no audit report to verify",
                           hint="write it first with 'harness report RUN_ID'")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return {"ok": False, "report": str(path), "problems": [f"audit.json is not valid JSON ({exc.msg}, line {exc.lineno})"],
                "files": [], "checked": 0}
    evidence = doc.get("evidence")
    if not isinstance(evidence, dict):
        raise HarnessError(f"{path} cites no hashes (written by an older version of the harness)",
                           hint="write the report again with 'harness report RUN_ID'")
    problems: list[str] = []
    files = []
    for entry in evidence.get("files", []):
        where = _resolve(entry, run_dir)
        if where is None or not where.is_file():
            status = "missing"
        else:
            status = "unchanged" if sha256_file(where) == entry["sha256"] else "changed"
        files.append({"path": entry["path"], "root": entry["root"], "status": status})
        if status != "unchanged":
            problems.append(f"{entry['path']} ({entry['root']}) is {status} since the report was written")
    for name, digest in (evidence.get("outputs") or {}).items():
        out = run_dir / "report" / name
        status = "missing" if not out.is_file() else ("unchanged" if sha256_file(out) == digest else "changed")
        files.append({"path": f"report/{name}", "root": "run", "status": status})
        if status != "unchanged":
            problems.append(f"report/{name} is {status} since the report was written")
    head = evidence.get("ledger_head")
    ledger_note = None
    if head:
        check = ledger.verify()
        entries = ledger.read_entries(ledger.default_path())
        if not check.ok:
            problems.append(f"the ledger fails verification: {check.message}")
        elif head["entries"] > len(entries) or (head["entries"] and entries[head["entries"] - 1]["hash"] != head["last_hash"]):
            problems.append(f"the ledger no longer holds the {head['entries']} entries the report saw (head {head['last_hash'][:12]})")
        else:
            ledger_note = f"the ledger still holds the report's head (entry {head['entries']}) and is intact"
    sig = doc.get("signature")
    key = ledger.ledger_key()
    if sig and key is not None:
        signature = "valid" if signature_ok(doc, key) else "invalid"
        if signature == "invalid":
            problems.append(f"the report's signature does not match ({ledger.KEY_ENV} differs, or audit.json was edited)")
    elif sig:
        signature = f"present, not checked ({ledger.KEY_ENV} is not set here)"
    else:
        signature = "not signed" + (f" ({ledger.KEY_ENV} was not set when it was written)" if key is not None else "")
    return {"ok": not problems, "report": shown(path, run_dir.parent.parent) or str(path), "checked": len(files),
            "files": files, "ledger": ledger_note, "signature": signature, "problems": problems}
