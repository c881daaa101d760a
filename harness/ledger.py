"""The tamper-evident ledger: an append-only JSONL file where every entry carries the hash of the one
before it (promotions, rejections, sign-offs, rollbacks; who, when, what).

Each entry is ``{"seq", "time", "actor", "action", "subject", "details", "prev_hash", "hash"}``
where ``hash`` is the SHA-256 of the entry's canonical JSON without ``hash``. A small head file
beside the ledger (``<ledger>.head``) records the number of entries and the last hash, so deleting
entries at the end is detected too. Appends hold a file lock (concurrent cycles queue up), check the
existing chain first (nothing is appended to a broken ledger), and replace the file atomically.

``verify(path)`` reports the first entry that was edited, deleted, inserted or reordered.

A hash chain alone does not stop someone who can write the file from rewriting it whole (every hash
recomputed). With ``HARNESS_LEDGER_KEY`` set, each entry also carries ``mac``, an HMAC-SHA256 of its
hash under that key, and so does the head file; ``verify`` with the key then detects a rewrite by
anyone without it. Once keyed, every later entry must be keyed; a ledger started before the key was
set is sealed from then on with ``harness ledger seal`` (an entry of its own). Without the key,
``verify`` checks the chain and says the MACs could not be checked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._lock import file_lock
from harness.artifacts import atomic_write_json, atomic_write_text, utc_now
from harness.errors import EXIT_ERROR, HarnessError

__all__ = ["LedgerCheck", "append", "verify", "read_entries", "default_path", "ledger_key", "seal", "require_writable",
           "GENESIS", "KEY_ENV"]

GENESIS = "0" * 64
ACTIONS = ("promote", "reject", "sign_off", "rollback", "decision", "repair", "seal")
KEY_ENV = "HARNESS_LEDGER_KEY"


def ledger_key() -> bytes | None:
    """The ledger's HMAC key from ``$HARNESS_LEDGER_KEY`` (None when unset or empty)."""
    value = os.environ.get(KEY_ENV, "")
    return value.encode() if value else None


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _head_message(entries: int, last_hash: str) -> str:
    return f"head:{entries}:{last_hash}"


def default_path() -> Path:
    from harness.models import harness_home

    return Path(os.environ.get("HARNESS_LEDGER", harness_home() / "ledger" / "ledger.jsonl"))


def _entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k not in ("hash", "mac")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


@dataclass
class LedgerCheck:
    path: Path
    ok: bool
    entries: int
    problem: str | None = None  # edited | deleted | inserted | reordered | malformed | truncated
    line: int | None = None
    message: str = "the ledger is intact"
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "ok": self.ok, "entries": self.entries, "problem": self.problem,
                "line": self.line, "message": self.message, **self.details}

    @property
    def keyed(self) -> str:
        """verified (MACs checked with the key), unchecked (MACs present, no key here) or none."""
        return self.details.get("keyed", "none")


def read_entries(path: Path, *, skip_malformed: bool = False) -> list[dict[str, Any]]:
    """The entries in file order. A line that is not JSON is an error; with ``skip_malformed`` (for a reader
    that reports :func:`verify`'s verdict beside them) it is left out, as is any line that is not an entry
    with a subject."""
    if not path.is_file():
        return []
    out = []
    text = path.read_text(encoding="utf-8", errors="replace" if skip_malformed else "strict")
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                if skip_malformed:
                    continue
                raise HarnessError(f"the ledger {path} is corrupt: line {number} is not valid JSON",
                                   hint="'harness ledger verify' says what was changed; restore the ledger from a backup") from None
            if not skip_malformed or (isinstance(entry, dict) and isinstance(entry.get("subject"), dict)):
                out.append(entry)
    return out


def verify(path: Path | None = None, key: bytes | None = None) -> LedgerCheck:
    """Walk the chain; return the first problem found (or ``ok``). ``key`` (default: ``$HARNESS_LEDGER_KEY``)
    checks the entries' and the head's MACs: problem ``forged`` when one is missing or wrong."""
    path = Path(path or default_path())
    key = key if key is not None else ledger_key()
    if not path.is_file():
        head = _head_path(path)
        if head.is_file() and json.loads(head.read_text()).get("entries", 0) > 0:
            return LedgerCheck(path, False, 0, "deleted", None, f"{path} is missing but its head file records entries")
        return LedgerCheck(path, True, 0, message="the ledger is empty")
    # The head first: an append landing between the two reads then only makes the head lag (tolerated).
    head_path = _head_path(path)
    head = None
    if head_path.is_file():
        try:
            head = json.loads(head_path.read_text())
            if not isinstance(head, dict) or not isinstance(head.get("entries"), int):
                raise ValueError
        except ValueError:
            return LedgerCheck(path, False, 0, "malformed", None, f"the head file {head_path} is corrupt")
    lines = path.read_text(encoding="utf-8").splitlines()
    if head is None and any(line.strip() for line in lines):
        return LedgerCheck(path, False, 0, "deleted", None, f"the head file {head_path} is missing")
    seqs_after: list[set[int]] = []  # for each line, the sequence numbers on the lines after it
    later: set[int] = set()
    for line in reversed(lines):
        seqs_after.append(set(later))
        try:
            later.add(int(json.loads(line)["seq"]))
        except (ValueError, TypeError, KeyError, json.JSONDecodeError):
            pass
    seqs_after.reverse()
    seen: set[str] = set()
    prev, expected_seq, count = GENESIS, 1, 0
    first_keyed: int | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            return LedgerCheck(path, False, count, "malformed", number, f"line {number} is not valid JSON")
        if not isinstance(entry, dict) or "hash" not in entry or not isinstance(entry.get("seq"), int) \
                or isinstance(entry.get("seq"), bool):
            return LedgerCheck(path, False, count, "malformed", number, f"line {number} is not a ledger entry")
        if _entry_hash(entry) != entry["hash"]:
            return LedgerCheck(path, False, count, "edited", number,
                               f"entry {entry.get('seq')} (line {number}) was edited: its content no longer matches its hash")
        if entry["seq"] != expected_seq or entry.get("prev_hash") != prev:
            if entry["seq"] > expected_seq and expected_seq in seqs_after[number - 1]:
                kind, what = "reordered", f"entry {entry['seq']} at line {number} comes before entry {expected_seq}"
            elif entry["seq"] > expected_seq:
                kind, what = "deleted", f"entries {expected_seq}-{entry['seq'] - 1} are missing before line {number}"
            elif entry["hash"] in seen:
                kind, what = "inserted", f"line {number} repeats entry {entry['seq']}"
            elif entry["seq"] < expected_seq:
                kind, what = "reordered", f"entry {entry['seq']} at line {number} comes after entry {expected_seq - 1}"
            else:
                kind, what = "edited", (f"the chain breaks at line {number}: the entry before it was changed and "
                                        f"re-hashed, or replaced by another")
            return LedgerCheck(path, False, count, kind, number, what)
        if "mac" in entry or first_keyed is not None:
            first_keyed = first_keyed or entry["seq"]
            if key is not None and not hmac.compare_digest(str(entry.get("mac", "")), _mac(key, entry["hash"])):
                what = "carries no MAC although earlier entries do" if "mac" not in entry else "has a MAC that does not match"
                return LedgerCheck(path, False, count, "forged", number,
                                   f"entry {entry['seq']} (line {number}) {what}: written or rewritten without "
                                   f"{KEY_ENV} (or with another key)", details={"keyed_from": first_keyed})
        seen.add(entry["hash"])
        prev, expected_seq, count = entry["hash"], expected_seq + 1, count + 1
    if head is not None:
        h = head
        if h.get("entries", 0) > count:
            return LedgerCheck(path, False, count, "deleted", None,
                               f"the last {h['entries'] - count} entries were removed (the head records {h['entries']})")
        if h.get("entries") == count and h.get("last_hash") != prev:
            return LedgerCheck(path, False, count, "edited", None, "the last entry differs from the one the head records")
    details: dict[str, Any] = {"last_hash": prev, "keyed": "none", "keyed_from": first_keyed}
    if key is not None and count:
        if first_keyed is None:
            return LedgerCheck(path, False, count, "forged", None,
                               f"{KEY_ENV} is set but no entry carries a MAC: the ledger was written without the key, "
                               "or rewritten by someone without it ('harness ledger seal' keys a ledger started earlier)",
                               details=details)
        if head is None or not hmac.compare_digest(str(head.get("mac", "")), _mac(key, _head_message(head["entries"], head.get("last_hash", "")))):
            return LedgerCheck(path, False, count, "forged", None,
                               f"the head file's MAC is missing or wrong: it was rewritten without {KEY_ENV}", details=details)
        details["keyed"] = "verified"
        return LedgerCheck(path, True, count, message=f"the ledger is intact; entries {first_keyed}-{count} carry MACs "
                                                      f"verified with {KEY_ENV}", details=details)
    if first_keyed is not None:
        details["keyed"] = "unchecked"
        return LedgerCheck(path, True, count, message=f"the chain is intact; entries {first_keyed}-{count} carry MACs that "
                                                      f"were not checked ({KEY_ENV} is not set here)", details=details)
    return LedgerCheck(path, True, count, message="the chain is intact (not keyed: someone who can write the file could "
                                                  f"rewrite it whole; set {KEY_ENV} to detect that)", details=details)


def append(action: str, *, actor: str, subject: dict[str, Any], details: dict[str, Any] | None = None,
           path: Path | None = None) -> dict[str, Any]:
    """Append one entry under a lock; refuses to extend a ledger whose chain is broken."""
    if action not in ACTIONS:
        raise ValueError(f"unknown ledger action {action!r}")
    path = Path(path or default_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock")):
        check = verify(path)
        never_keyed = check.problem == "forged" and check.line is None and check.details.get("keyed_from") is None
        if not check.ok and not (action == "seal" and never_keyed):
            hint = ("a person who trusts the ledger as it is seals it once: 'harness ledger seal' (with the key set)"
                    if never_keyed else "restore it from a backup, then run 'harness ledger verify'")
            raise HarnessError(f"the ledger {path} failed verification: {check.message}; nothing was appended", hint=hint,
                               exit_code=EXIT_ERROR)
        entry = {"seq": check.entries + 1, "time": utc_now(), "actor": actor, "action": action,
                 "subject": subject, "details": details or {}, "prev_hash": check.details.get("last_hash", GENESIS)}
        entry["hash"] = _entry_hash(entry)
        head = {"entries": entry["seq"], "last_hash": entry["hash"], "updated": entry["time"]}
        key = ledger_key()
        if key is not None:
            entry["mac"] = _mac(key, entry["hash"])
            head["mac"] = _mac(key, _head_message(entry["seq"], entry["hash"]))
        elif check.details.get("keyed_from"):
            raise _keyless_write(path, "nothing was appended")
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        atomic_write_text(path, old + json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
        atomic_write_json(_head_path(path), head)
    return entry


def require_writable(path: Path | None = None) -> None:
    """Refuse, before anything else changes (a registry alias, a decision file), a command that will append
    to a keyed ledger without the key: the append would fail after the change."""
    path = Path(path or default_path())
    if ledger_key() is None and verify(path, key=None).keyed == "unchecked":
        raise _keyless_write(path, "nothing was changed")


def _keyless_write(path: Path, outcome: str) -> HarnessError:
    return HarnessError(f"the ledger {path} is keyed (entries carry MACs) but {KEY_ENV} is not set here; {outcome}",
                        hint=f"set {KEY_ENV} to the ledger's key", exit_code=EXIT_ERROR)


def seal(actor: str, path: Path | None = None) -> dict[str, Any]:
    """Key a ledger from now on: append a ``seal`` entry with ``$HARNESS_LEDGER_KEY`` (its MAC vouches for the
    whole chain before it, whose hashes it chains to)."""
    path = Path(path or default_path())
    if ledger_key() is None:
        raise HarnessError(f"{KEY_ENV} is not set: there is no key to seal the ledger with",
                           hint=f"set {KEY_ENV} from your secret store (a CI secret, a vault), then run it again")
    return append("seal", actor=actor, subject={"ledger": str(path)}, details={"keyed_from_here": True}, path=path)
