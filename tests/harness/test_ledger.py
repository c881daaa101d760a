import json
import multiprocessing

import pytest

from harness import ledger
from harness.cli import main
from harness.errors import HarnessError


def _fill(path, n=5):
    for i in range(n):
        ledger.append("promote" if i % 2 else "reject", actor=f"reviewer{i}", subject={"decision": f"d{i}"}, path=path)
    return path.read_text().splitlines()


def test_intact_chain(tmp_path):
    path = tmp_path / "ledger.jsonl"
    lines = _fill(path)
    check = ledger.verify(path)
    assert check.ok and check.entries == 5
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev_hash"] == ledger.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(entries, entries[1:]))


@pytest.mark.parametrize("tamper, problem, line", [
    (lambda ls: [ls[0], ls[1].replace("reviewer1", "mallory"), *ls[2:]], "edited", 2),
    (lambda ls: [ls[0], *ls[2:]], "deleted", 2),
    (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "reordered", 2),
    (lambda ls: [ls[0], ls[1], ls[3], ls[2], ls[4]], "reordered", 3),
    (lambda ls: ls[:3], "deleted", None),  # the last entries removed: caught by the head file
    (lambda ls: [ls[0], ls[1], ls[1], *ls[2:]], "inserted", 3),
    (lambda ls: [ls[0], "{not json", *ls[1:]], "malformed", 2),
])
def test_tampering_is_detected(tmp_path, tamper, problem, line):
    path = tmp_path / "ledger.jsonl"
    lines = _fill(path)
    path.write_text("\n".join(tamper(lines)) + "\n")
    check = ledger.verify(path)
    assert not check.ok and check.problem == problem and check.line == line, check
    with pytest.raises(HarnessError, match="failed verification"):
        ledger.append("rollback", actor="x", subject={}, path=path)


def test_rewritten_hashes_are_caught_by_the_head(tmp_path):
    """Re-hashing an edited last entry keeps the chain valid, but not its match with the head file."""
    path = tmp_path / "ledger.jsonl"
    lines = _fill(path, 3)
    last = json.loads(lines[-1])
    last["actor"] = "mallory"
    last["hash"] = ledger._entry_hash(last)
    path.write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    check = ledger.verify(path)
    assert not check.ok and check.problem == "edited"


def _worker(path, n, who):
    for i in range(n):
        ledger.append("sign_off", actor=who, subject={"i": i}, path=path)


def test_concurrent_appends_stay_consistent(tmp_path):
    path = tmp_path / "ledger.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(path, 8, f"cycle{k}")) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    check = ledger.verify(path)
    assert check.ok and check.entries == 32
    actors = [json.loads(line)["actor"] for line in path.read_text().splitlines()]
    assert {a: actors.count(a) for a in set(actors)} == {f"cycle{k}": 8 for k in range(4)}


def test_cli_verify(tmp_path, capsys):
    path = tmp_path / "ledger.jsonl"
    lines = _fill(path, 3)
    assert main(["ledger", "verify", "--path", str(path)]) == 0
    capsys.readouterr()
    assert main(["ledger", "show", "--path", str(path), "--last", "2", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [e["seq"] for e in shown] == [json.loads(x)["seq"] for x in lines[1:]] and "hash" in shown[0]
    assert main(["ledger", "show", "--path", str(path)]) == 0
    assert "ledger" in capsys.readouterr().out  # the table, on stdout
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    assert main(["ledger", "verify", "--path", str(path)]) == 1
    out = capsys.readouterr().out
    assert '"problem": "deleted"' in out and '"line": 2' in out


def test_rehashed_middle_edit_missing_head_and_bad_seq(tmp_path):
    path = tmp_path / "ledger.jsonl"
    lines = _fill(path, 4)
    entry = json.loads(lines[1])
    entry["actor"] = "mallory"
    entry["hash"] = ledger._entry_hash(entry)  # a careful forger re-hashes the entry it edited
    path.write_text("\n".join([lines[0], json.dumps(entry), *lines[2:]]) + "\n")
    check = ledger.verify(path)
    assert not check.ok and check.problem == "edited" and check.line == 3
    path.write_text("\n".join(lines) + "\n")
    assert ledger.verify(path).ok
    bad = json.loads(lines[2])
    bad["seq"] = "3"
    path.write_text("\n".join([*lines[:2], json.dumps(bad), lines[3]]) + "\n")
    assert ledger.verify(path).problem == "malformed"
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "ledger.jsonl.head").unlink()
    check = ledger.verify(path)
    assert not check.ok and "head file" in check.message


def _rewrite_whole(path, edit):
    """What someone who can write the files but lacks the key does: edit, re-hash every entry, re-chain,
    and write a matching head (dropping the MACs they cannot compute)."""
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    prev = ledger.GENESIS
    for e in entries:
        edit(e)
        e.pop("mac", None)
        e["prev_hash"] = prev
        e["hash"] = prev = ledger._entry_hash(e)
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    path.with_name(path.name + ".head").write_text(json.dumps({"entries": len(entries), "last_hash": prev}))


def test_a_whole_rewrite_passes_the_bare_chain_and_fails_the_keyed_one(tmp_path, monkeypatch):
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(ledger.KEY_ENV, "s3cret")
    _fill(path, 4)
    check = ledger.verify(path)
    assert check.ok and check.keyed == "verified" and "MACs verified" in check.message
    assert all("mac" in json.loads(line) for line in path.read_text().splitlines())
    _rewrite_whole(path, lambda e: e.update(actor="mallory") if e["seq"] == 2 else None)
    monkeypatch.delenv(ledger.KEY_ENV)
    assert ledger.verify(path).ok  # the bare hash chain cannot tell
    monkeypatch.setenv(ledger.KEY_ENV, "s3cret")
    check = ledger.verify(path)
    assert not check.ok and check.problem == "forged" and "no entry carries a MAC" in check.message


def test_keyed_entries_are_checked_one_by_one(tmp_path, monkeypatch, capsys):
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(ledger.KEY_ENV, "s3cret")
    lines = _fill(path, 3)
    # a forger keeps the old MACs but edits an entry and re-hashes the chain after it
    entries = [json.loads(line) for line in lines]
    entries[1]["actor"] = "mallory"
    prev = entries[0]["hash"]
    for e in entries[1:]:
        e["prev_hash"] = prev
        e["hash"] = prev = ledger._entry_hash(e)
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    check = ledger.verify(path)
    assert not check.ok and check.problem == "forged" and check.line == 2 and "does not match" in check.message
    path.write_text("\n".join(lines) + "\n")
    assert not ledger.verify(path, key=b"another key").ok  # a wrong key is no key
    assert main(["ledger", "verify", "--path", str(path)]) == 0
    assert "keyed and verified" in " ".join(capsys.readouterr().err.split())
    monkeypatch.delenv(ledger.KEY_ENV)
    check = ledger.verify(path)
    assert check.ok and check.keyed == "unchecked" and "not checked" in check.message
    with pytest.raises(HarnessError, match="is keyed"):  # no unkeyed entry after keyed ones
        ledger.append("promote", actor="x", subject={}, path=path)


def test_an_older_ledger_is_sealed_once_then_keyed(tmp_path, monkeypatch, capsys):
    path = tmp_path / "ledger.jsonl"
    _fill(path, 2)
    assert ledger.verify(path).keyed == "none"
    monkeypatch.setenv(ledger.KEY_ENV, "s3cret")
    check = ledger.verify(path)
    assert not check.ok and check.problem == "forged" and "ledger seal" in check.message
    with pytest.raises(HarnessError) as err:  # nothing is appended until a person seals it
        ledger.append("promote", actor="x", subject={}, path=path)
    assert "harness ledger seal" in err.value.hint
    assert main(["ledger", "seal", "--path", str(path), "--by", "Ana Lima"]) == 0
    ledger.append("promote", actor="x", subject={}, path=path)
    check = ledger.verify(path)
    assert check.ok and check.keyed == "verified" and check.details["keyed_from"] == 3 and check.entries == 4
    monkeypatch.delenv(ledger.KEY_ENV)
    assert main(["ledger", "seal", "--path", str(path), "--by", "Ana Lima"]) == 2
    assert "HARNESS_LEDGER_KEY is not set" in capsys.readouterr().err


def test_a_forged_keyed_ledger_cannot_be_sealed_over_and_writers_stop_before_acting(tmp_path, monkeypatch):
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv(ledger.KEY_ENV, "s3cret")
    lines = _fill(path, 3)
    entry = json.loads(lines[1])
    entry["mac"] = "0" * 64  # a wrong MAC on entry 2
    path.write_text("\n".join([lines[0], json.dumps(entry), lines[2]]) + "\n")
    assert ledger.verify(path).problem == "forged"
    with pytest.raises(HarnessError) as err:
        ledger.seal("mallory", path)
    assert err.value.exit_code == 1 and "restore it from a backup" in err.value.hint
    assert path.read_text().count("\n") == 3  # nothing appended
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.delenv(ledger.KEY_ENV)
    with pytest.raises(HarnessError, match="is keyed .* not set here; nothing was changed") as err:
        ledger.require_writable(path)  # what gate, promote and rollback call first
    assert err.value.exit_code == 1
    monkeypatch.setenv(ledger.KEY_ENV, "s3cret")
    ledger.require_writable(path)
