"""The audit report's RAG section (reports.retrieval): each model without and with retrieved passages."""

import json

from harness import gate
from reports import audit
from tests.harness.test_gate import RULES, _binary, _policy, _write_suite
from tests.reports.test_audit import _evidence, cycle  # noqa: F401  (the fixture)


def test_report_shows_each_model_without_and_with_rag(cycle, tmp_path):  # noqa: F811
    run_dir, cand_fp, inc_fp, config = cycle
    _evidence(run_dir, cand_fp, inc_fp, gain=True)
    for fp, model, p in ((inc_fp, "builtin:tiny-random", 0.6), (cand_fp, "candidate", 0.8)):
        _write_suite(run_dir / "eval", fp, model, "domain/handbook_mcq+rag", _binary(p, 300, 2))
        path = run_dir / "eval" / fp / "domain" / "handbook_mcq+rag" / "summary.json"
        summary = json.loads(path.read_text())
        summary["metrics"]["acc"].update(ci_low=p - 0.05, ci_high=p + 0.05, n=300)
        summary["retrieval"] = {"retriever": "bm25", "k": 4, "recall": {"metric": "recall@4", "k": 4, "estimate": 0.9,
                                                                        "ci_low": 0.85, "ci_high": 0.95, "n": 300}}
        path.write_text(json.dumps(summary))
    assert gate.run(config(f"gate.policy={_policy(tmp_path, RULES)}")).decision["passed"]  # variants are not gated
    result = audit.run(config(), pdf=False)
    doc = json.loads(result.json.read_text())
    rows = {r["model"]: r for r in doc["rag"]}
    assert set(rows) == {"incumbent", "final candidate"}
    assert [r["model"] for r in doc["rag"]] == ["incumbent", "final candidate"]  # in role order
    cand = rows["final candidate"]
    assert cand["suite"] == "domain/handbook_mcq" and cand["metric"] == "acc"
    assert cand["plain"]["estimate"] is not None and abs(cand["rag"]["estimate"] - 0.8) < 0.1
    assert cand["recall"]["estimate"] == 0.9
    html = result.html.read_text()
    assert "<caption>Each model without and with retrieved passages" in html
    assert '<th scope="row">final candidate</th><td>domain/handbook_mcq</td>' in html


def test_no_rag_section_without_rag_results(cycle, tmp_path):  # noqa: F811
    run_dir, cand_fp, inc_fp, config = cycle
    _evidence(run_dir, cand_fp, inc_fp, gain=True)
    gate.run(config(f"gate.policy={_policy(tmp_path, RULES)}"))
    result = audit.run(config(), pdf=False)
    assert json.loads(result.json.read_text())["rag"] is None
    assert "without and with retrieved passages" not in result.html.read_text()
