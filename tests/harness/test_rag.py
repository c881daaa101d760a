"""Retrieval-augmented evaluation (harness.rag): chunking, retrieval, recall@k, the index cache, bad input,
and an eval on builtin:tiny-random that writes the +rag variant beside the plain suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import RagChunkConfig, RagConfig, load_config
from harness.rag import augment, build_index, chunk_text, rag_table, recall_at_k

REPO = Path(__file__).resolve().parents[2]
HANDBOOK = REPO / "examples/demo/handbook.md"

TOY = """Preamble line.

# Policies

Intro to policies.

## Holidays

Staff get 12 public holidays.

The office closes on them.

## Parking

Parking permits cost $30 per month.

```
# not a heading inside a fence
```
"""


def test_chunking_by_section_and_paragraph():
    chunks = chunk_text(TOY, "toy.md", RagChunkConfig())
    assert [c.section for c in chunks] == ["", "Policies", "Holidays", "Parking"]
    holidays = chunks[2]
    assert holidays.path == ("Policies", "Holidays") and holidays.id == "toy.md#holidays"
    assert holidays.text == "Staff get 12 public holidays.\n\nThe office closes on them."  # one passage per section
    assert holidays.indexed.startswith("Policies > Holidays\n")
    assert "# not a heading inside a fence" in chunks[3].text  # fenced lines are never headings
    by_para = chunk_text(TOY, "toy.md", RagChunkConfig(by="paragraph"))
    assert [c.id for c in by_para if c.section == "Holidays"] == ["toy.md#holidays", "toy.md#holidays-2"]
    long = chunk_text("# A\n\n" + " ".join(["word"] * 100), "l.md", RagChunkConfig(max_chars=100))
    assert len(long) == 5 and all(len(c.text) <= 100 for c in long) and {c.section for c in long} == {"A"}


@pytest.mark.parametrize("query, section", [
    ("How many hours of unused PTO carry over to next year?", "PTO carryover limit"),
    ("What is the ethics hotline called?", "Name of the ethics hotline"),
    ("How much is mileage reimbursed per mile when I drive my own car?", "Mileage rate"),
    ("Which form do I use to declare a conflict of interest?", "Conflict of interest declaration form"),
])
def test_bm25_finds_the_section_that_answers(tmp_path, query, section):
    index = build_index(RagConfig(corpus=HANDBOOK), cache_root=tmp_path)
    best, _score = index.search([query], k=1)[0][0]
    assert best.section == section


def test_recall_at_k_on_a_toy_corpus(tmp_path):
    corpus = tmp_path / "toy.md"
    corpus.write_text(TOY)
    index = build_index(RagConfig(corpus=corpus, k=1), cache_root=tmp_path / "idx")
    docs = [{"question": "How many public holidays do staff get?", "section": "Holidays"},
            {"question": "What does a parking permit cost per month?", "section": "parking"},  # case is ignored
            {"question": "How many public holidays do staff get?", "section": "Parking"},  # the wrong gold: a miss
            {"question": "Anything?"}]  # no gold section: not counted
    rows = augment(docs, index, "question")
    assert [r["rag"]["hit"] for r in rows] == [True, True, False, None]
    assert rows[0]["question"].endswith("Question: How many public holidays do staff get?")
    assert "[1] Policies > Holidays\nStaff get 12" in rows[0]["question"]  # the passage comes before the question
    r = recall_at_k([x["rag"]["hit"] for x in rows], 1, n_resamples=200)
    assert r["estimate"] == pytest.approx(2 / 3) and r["n"] == 3 and r["without_gold"] == 1
    assert 0 <= r["ci_low"] <= r["estimate"] <= r["ci_high"] <= 1


def test_index_is_reused_until_the_corpus_or_chunker_changes(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "a.md").write_text(TOY)
    first = build_index(RagConfig(corpus=corpus), cache_root=tmp_path / "idx")
    again = build_index(RagConfig(corpus=corpus), cache_root=tmp_path / "idx")
    assert first.built and not again.built and again.fingerprint == first.fingerprint
    assert again.search(["parking permit"], k=1)[0][0][0].section == "Parking"  # the stored index answers
    (corpus / "a.md").write_text(TOY.replace("$30", "$45"))
    changed = build_index(RagConfig(corpus=corpus), cache_root=tmp_path / "idx")
    assert changed.built and changed.fingerprint != first.fingerprint
    assert "$45" in changed.search(["parking permit"], k=1)[0][0][0].text  # never the stale text
    rechunked = build_index(RagConfig(corpus=corpus, chunk={"by": "paragraph"}), cache_root=tmp_path / "idx")
    assert rechunked.built and rechunked.fingerprint != changed.fingerprint


def _bad_corpus(tmp_path: Path, kind: str) -> list[str]:
    if kind == "missing":
        return ["--rag-corpus", str(tmp_path / "nope.md")]
    if kind == "empty":
        (tmp_path / "empty.md").write_text("\n\n# Title only\n")
        return ["--rag-corpus", str(tmp_path / "empty.md")]
    if kind == "unreadable":
        (tmp_path / "bin.md").write_bytes(b"\xff\xfe\x00binary")
        return ["--rag-corpus", str(tmp_path / "bin.md")]
    if kind == "empty folder":
        (tmp_path / "folder").mkdir()
        return ["--rag-corpus", str(tmp_path / "folder")]
    if kind == "k too large":
        return ["--rag-corpus", str(HANDBOOK), "eval.rag.k=500"]
    if kind == "retriever":
        return ["--rag-corpus", str(HANDBOOK), "eval.rag.retriever=splade"]
    return ["--rag"]  # no corpus anywhere


@pytest.mark.parametrize("kind, message", [
    ("missing", "does not exist"), ("empty", "is empty"), ("unreadable", "cannot read"),
    ("empty folder", "holds no"), ("k too large", "has only 70 passages"), ("retriever", "retriever"),
    ("no corpus", "--rag needs documents"),
])
def test_bad_rag_input_is_exit_2(tmp_path, capsys, kind, message):
    argv = ["eval", "--model", "builtin:tiny-random", "--suite", "handbook_qa", "--limit", "2",
            "--output", str(tmp_path / "out"), *_bad_corpus(tmp_path, kind)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in " ".join((captured.out + captured.err).split())
    assert not (tmp_path / "out").exists()  # nothing scored


@pytest.mark.slow
def test_eval_with_rag_writes_the_variant_with_retrieved_passages(tmp_path, tiny_model_dir, capsys):
    from harness import evaluate
    from harness.compare import compare_dirs

    cfg = load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=r",
                             "eval.suites=[handbook_mcq, handbook_qa]", "eval.limit=3", "eval.bootstrap_resamples=200",
                             f"eval.output_dir={tmp_path / 'out'}", f"eval.rag.corpus={HANDBOOK}"])
    result = evaluate.run(cfg)
    by_suite = {r.suite: r for r in result.results}
    assert set(by_suite) == {"domain/handbook_mcq", "domain/handbook_qa", "domain/handbook_mcq+rag",
                             "domain/handbook_qa+rag"}
    rag = by_suite["domain/handbook_qa+rag"]
    assert rag.folder == tmp_path / "out" / rag.fingerprint / "domain" / "handbook_qa+rag"
    samples = [json.loads(line) for line in open(rag.folder / "samples.jsonl")]
    assert len(samples) == 3
    assert all(len(s["retrieved"]) == 4 and s["retrieved"][0].startswith("handbook.md#") for s in samples)
    assert samples[0]["retrieved"][0] == "handbook.md#pto-carryover-limit"
    assert samples[0]["retrieval_hit"] is True
    summary = json.loads((rag.folder / "summary.json").read_text())
    recall = summary["retrieval"]["recall"]
    assert recall["metric"] == "recall@4" and recall["n"] == 3 and 0 <= recall["estimate"] <= 1
    assert summary["retrieval"]["retriever"] == "bm25" and summary["retrieval"]["chunks"] == 70
    assert summary["data_hash"] != by_suite["domain/handbook_qa"].summary["data_hash"]  # never mixed with plain
    plain_samples = [json.loads(line) for line in open(by_suite["domain/handbook_qa"].folder / "samples.jsonl")]
    assert "retrieved" not in plain_samples[0] and "Question:" not in plain_samples[0]["doc"]["question"]
    table = rag_table([r.summary for r in result.results])
    assert {(r["suite"], r["metric"]) for r in table} == {("domain/handbook_qa", "match"), ("domain/handbook_mcq", "acc"),
                                                          ("domain/handbook_mcq", "acc_norm")}
    assert all(r["plain"] and r["rag"]["n"] == 3 and r["recall"]["k"] == 4 for r in table)
    comparison, _ = compare_dirs(tmp_path / "out" / rag.fingerprint, tmp_path / "out" / rag.fingerprint,
                                 tmp_path / "cmp.json")
    assert "domain/handbook_qa+rag" in comparison["suites"]  # RAG results compare like any suite's
    again = evaluate.run(cfg)  # cached, index reused
    assert all(r.cached for r in again.results)


def test_gate_patterns_leave_rag_variants_out_unless_they_name_them(tmp_path, tiny_model_dir, monkeypatch):
    from harness import gate
    from harness.models import fingerprint, resolve
    from tests.conftest import random_adapter
    from tests.harness.test_gate import _binary, _policy, _write_suite

    adapter = random_adapter(tmp_path / "adapter")
    cand_fp, inc_fp = fingerprint(resolve(str(adapter))), fingerprint(resolve("builtin:tiny-random"))
    monkeypatch.setenv("HARNESS_LEDGER", str(tmp_path / "ledger.jsonl"))
    eval_dir = tmp_path / "runs" / "g" / "eval"
    base = _binary(0.4, 200, 0)
    _write_suite(eval_dir, inc_fp, "inc", "domain/handbook_mcq", base)
    _write_suite(eval_dir, cand_fp, "cand", "domain/handbook_mcq", [1.0 if v or i % 3 == 0 else 0.0 for i, v in enumerate(base)])
    _write_suite(eval_dir, inc_fp, "inc", "domain/handbook_mcq+rag", [1.0] * 200)
    _write_suite(eval_dir, cand_fp, "cand", "domain/handbook_mcq+rag", [0.0] * 200)  # far worse with RAG
    rules = [{"id": "plain", "kind": "compare", "suites": ["domain/*"], "metric": "acc", "require": "improve", "by": 0},
             {"id": "rag", "kind": "compare", "suites": ["domain/*+rag"], "metric": "acc", "require": "improve", "by": 0}]
    cfg = load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=g",
                             f"gate.policy={_policy(tmp_path, rules)}", f"gate.candidate={adapter}"])
    d = gate.run(cfg).decision
    checks = {r["id"]: [(c["suite"], c["passed"]) for c in r["checks"]] for r in d["rules"]}
    assert checks == {"plain": [("domain/handbook_mcq", True)], "rag": [("domain/handbook_mcq+rag", False)]}


@pytest.mark.slow
@pytest.mark.parametrize("retriever", ["bm25", "dense"])
def test_recall_at_4_on_the_demo_handbook(tmp_path, retriever):
    """The demo's target: recall@4 >= 0.8 on both domain suites (measured: bm25 0.90, dense 0.96-0.97)."""
    from harness.suites import read_docs, select_suites

    index = build_index(RagConfig(corpus=HANDBOOK, retriever=retriever), cache_root=tmp_path)
    assert len(index.chunks) == 70
    for suite in select_suites(["domain"]):
        docs = read_docs(suite, suite.data_files())
        recall = recall_at_k([r["rag"]["hit"] for r in augment(docs, index, "question")], 4, n_resamples=500)
        print(f"{retriever} {suite.id}: recall@4 {recall['estimate']:.3f} [{recall['ci_low']:.3f}, {recall['ci_high']:.3f}] "
              f"n={recall['n']}")
        assert recall["n"] == len(docs) and recall["without_gold"] == 0
        assert recall["estimate"] >= 0.8
