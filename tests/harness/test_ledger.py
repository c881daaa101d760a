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
