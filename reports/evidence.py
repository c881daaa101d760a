"""What the audit report cites, pinned: the SHA-256 of every artifact it was built from, the ledger's head
when it was written, the hashes of its own HTML and PDF, and (with ``$HARNESS_LEDGER_KEY`` set) an
HMAC-SHA256 signature of the JSON. ``verify`` re-hashes all of it and names what changed.

Cited files are recorded relative to the run folder (``../../policy.yaml`` for a policy beside the
runs), so ``verify`` finds them from any working folder. Paths shown to readers are relative to the run
folder or the project, else under ``$HARNESS_HOME`` or ``~``, else ``.../<name>``: never a machine's
absolute path.

What is *not* re-hashed: model weights (the lineage pins them by fingerprint and SHA-256, checked when a
model is promoted and when it is loaded), and, without the key, the report's own figures (a signature
covers them only when ``$HARNESS_LEDGER_KEY`` was set when it was written and is set when it is verified).
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

__all__ = ["Cited", "shown", "shown_text", "canonical", "sign", "signature_ok", "verify"]

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
        if not p.exists():  # a hub id, builtin:..., or a path that is gone: as it was written
            return text
        p = p.resolve()  # a path relative to the project: shown relative to the run when inside it
    from harness.models import harness_home

    for root, prefix in ((run_dir, ""), (Path.cwd(), ""), (harness_home(), "$HARNESS_HOME/"), (Path.home(), "~/")):
        rel = _inside(p, root)
        if rel is not None:
            return prefix + (rel.as_posix() or ".")
    return f".../{p.name}"


def shown_text(text: str, paths: list[Path], run_dir: Path) -> str:
    """``text`` (e.g. a message from the ledger) with each of ``paths`` written as :func:`shown` writes it."""
    for path in paths:
        for form in {str(path), str(Path(path).resolve())}:
            text = text.replace(form, shown(form, run_dir) or form)
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
        """Each file relative to the run folder (``..`` for files outside it), with its SHA-256 and size."""
        out = [{"path": Path(os.path.relpath(path, self.run_dir.resolve())).as_posix(), "root": "run",
                "sha256": sha256_file(path), "bytes": path.stat().st_size} for path in self._files]
        return sorted(out, key=lambda e: e["path"])


_DOMAIN = b"harness-audit-report/v1\n"  # the same key signs ledger entries: never the same bytes


def canonical(doc: dict[str, Any]) -> bytes:
    """The bytes a signature covers: a fixed prefix, then the report's JSON without its signature, keys
    sorted, compact."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    return _DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(doc: dict[str, Any]) -> dict[str, Any] | None:
    key = ledger.ledger_key()
    if key is None:
        return None
    return {"algorithm": SIGNATURE_ALGORITHM, "key_env": ledger.KEY_ENV,
            "value": hmac.new(key, canonical(doc), hashlib.sha256).hexdigest()}


def signature_ok(doc: dict[str, Any], key: bytes) -> bool:
    sig = doc.get("signature")
    value = sig.get("value") if isinstance(sig, dict) else None
    if not isinstance(value, str):
        return False
    expected = hmac.new(key, canonical(doc), hashlib.sha256).hexdigest()
    return hmac.compare_digest(value.encode("utf-8", "replace"), expected.encode())


def _resolve(entry: dict[str, Any], run_dir: Path) -> Path:
    if entry.get("root") != "run" or not isinstance(entry.get("path"), str):
        raise ValueError(f"a cited file is not recorded relative to the run folder: {entry!r}")
    return run_dir / entry["path"]


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
    evidence = doc.get("evidence") if isinstance(doc, dict) else None
    if not isinstance(evidence, dict):
        raise HarnessError(f"{path} cites no hashes (written by an older version of the harness)",
                           hint="write the report again with 'harness report RUN_ID'")
    problems: list[str] = []
    files = []
    try:
        for entry in evidence.get("files", []):
            where = _resolve(entry, run_dir)
            status = "missing" if not where.is_file() else (
                "unchanged" if sha256_file(where) == entry["sha256"] else "changed")
            files.append({"path": entry["path"], "root": "run", "status": status})
            if status != "unchanged":
                problems.append(f"{entry['path']} is {status} since the report was written")
        for name, digest in (evidence.get("outputs") or {}).items():
            out = run_dir / "report" / name
            status = "missing" if not out.is_file() else ("unchanged" if sha256_file(out) == digest else "changed")
            files.append({"path": f"report/{name}", "root": "run", "status": status})
            if status != "unchanged":
                problems.append(f"report/{name} is {status} since the report was written")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        problems.append(f"audit.json's evidence section is malformed ({type(exc).__name__}: {exc})")
    head = evidence.get("ledger_head")
    ledger_note = None
    if head:
        check = ledger.verify()
        if not check.ok:
            problems.append(f"the ledger fails verification: {check.problem}"
                            + (f" at line {check.line}" if check.line else ""))
        else:
            entries = ledger.read_entries(ledger.default_path())
            n, last = head.get("entries"), head.get("last_hash")
            if not isinstance(n, int) or n < 1 or n > len(entries) or entries[n - 1].get("hash") != last:
                problems.append(f"the ledger no longer holds the {n} entries the report saw (head {str(last)[:12]})")
            else:
                ledger_note = f"the ledger still holds the report's head (entry {n}) and is intact"
    sig = doc.get("signature")
    key = ledger.ledger_key()
    not_covered = ["model weights: pinned in the lineage by fingerprint and SHA-256, checked at promotion and load, "
                   "not re-hashed here"]
    if key is not None:
        if sig:
            signature = "valid" if signature_ok(doc, key) else "invalid"
            if signature == "invalid":
                problems.append(f"the report's signature does not match: audit.json was edited, or {ledger.KEY_ENV} "
                                "is another key than the one it was signed with")
        else:
            signature = "missing"
            problems.append(f"{ledger.KEY_ENV} is set but audit.json carries no signature: it cannot be told apart "
                            "from an edited report (write the report again with the key set to sign it)")
    else:
        signature = f"present, not checked ({ledger.KEY_ENV} is not set here)" if sig else "not signed"
        not_covered.append(f"audit.json's own content (decision, figures): without {ledger.KEY_ENV} there is no "
                           "signature to check")
    return {"ok": not problems, "report": shown(path, run_dir.parent.parent) or str(path), "checked": len(files),
            "files": files, "ledger": ledger_note, "signature": signature, "not_covered": not_covered,
            "problems": problems}
