"""``harness report diff``: two runs built like test_audit's (synthetic evaluation evidence, a real gate
decision) plus the resolved config a cycle writes at its start (``harness.config.write_resolved_config``)."""

from __future__ import annotations

import html as html_lib
import json
import os

import pytest

from harness import gate, registry
from harness.artifacts import update_manifest
from harness.config import load_config
from harness.config import write_resolved_config
from harness.errors import HarnessError
from harness.models import fingerprint, resolve
from harness.schemas import DataCard, TrainingResult, write_artifact
from harness.stats import unpaired_difference
from reports import diff
from reports._diff_metrics import metric_changes
from tests.harness.test_gate import RULES, _policy, _write_suite
from tests.reports.test_audit import _evidence


def _adapter(folder, seed):
    """A tiny LoRA adapter on the built-in model; the seed makes its weights (and fingerprint) its own."""
    import torch
    from peft import LoraConfig, get_peft_model

    from harness.models import load_model, load_tokenizer

    spec = resolve("builtin:tiny-random")
    torch.manual_seed(seed)
    get_peft_model(load_model(spec), LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM")).save_pretrained(folder)
    load_tokenizer(spec).save_pretrained(folder)
    (folder / "harness_adapter.json").write_text(json.dumps({"base": "builtin:tiny-random"}))
    return fingerprint(resolve(str(folder)))


@pytest.fixture
def runs(tmp_path, monkeypatch, tiny_model_dir):
    """make(run_id, *overrides, gain=, seed=, train_rows=, incumbent=): one gated run under tmp/runs."""
    monkeypatch.setenv("HARNESS_LEDGER", str(tmp_path / "ledger.jsonl"))
    (tmp_path / "mlflow").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    root = tmp_path / "runs"
    policy = _policy(tmp_path, RULES)
    inc_fp = fingerprint(resolve("builtin:tiny-random"))

    def config(run_id, *extra):
        return load_config(None, ["model.base=builtin:tiny-random", f"run.root={root}", f"run.id={run_id}",
                                  f"gate.candidate={root / run_id / 'dpo' / 'adapter'}", f"gate.policy={policy}",
                                  "registry.model_name=diff-model", *extra])

    def make(run_id, *extra, gain=True, seed=0, train_rows=80, incumbent=None):
        cfg = config(run_id, *extra, *([f"gate.incumbent={incumbent[0]}"] if incumbent else []))
        run_dir = cfg.layout().dir
        cand_fp = _adapter(run_dir / "dpo" / "adapter", seed)
        write_resolved_config(cfg)
        write_artifact(run_dir / "data" / "data_card.json", DataCard(
            created="2026-12-01T00:00:00+00:00", fingerprint=f"data-{train_rows}", seed=0, settings={},
            inputs=[{"source": str(tmp_path / "tickets.jsonl"), "domain": "tickets", "sha256": "a" * 64}],
            counts={"read": 100, "dropped": 100 - train_rows - 10, "train": train_rows, "validation": 10},
            drop_summary={}, drops=[], lengths={}, outputs={"train.jsonl": f"t{train_rows}", "validation.jsonl": "v"}))
        write_artifact(run_dir / "dpo" / "result.json", TrainingResult(
            kind="dpo_result", finished="2026-12-01T00:00:00+00:00", fingerprint="k", model_path=str(run_dir / "dpo" / "adapter"),
            model_sha256="s", metrics={}, objective="dpo", loss_type="sigmoid", beta=cfg.dpo.beta))
        _evidence(run_dir, cand_fp, incumbent[1] if incumbent else inc_fp, gain)
        decision = gate.run(cfg).decision
        return cfg, decision, cand_fp

    return root, make


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_a_changed_beta_and_metric_show_old_new_and_a_ci(runs, capsys):
    from harness.cli import main

    root, make = runs
    make("q1", gain=False, seed=1)
    make("q2", "dpo.beta=0.2", gain=True, seed=2)
    assert main(["report", "diff", "q1", "q2", f"run.root={root}", "registry.model_name=diff-model"]) == 0
    printed = json.loads(capsys.readouterr().out)
    out = root / "q2" / "report"
    assert printed["json"] == str(out / "diff-q1.json") and printed["html"] == str(out / "diff-q1.html")
    doc = json.loads((out / "diff-q1.json").read_text())
    assert doc["kind"] == "run_diff" and not doc["no_changes"] and doc["config_source"] == "config.yaml"
    # Only beta changed in the config: run.id is not a change, the candidate path is the same inside each run.
    assert doc["config"] == [{"key": "dpo.beta", "a": 0.1, "b": 0.2}]
    assert doc["data"] == [] and doc["base_model"] == {"key": "model.base", "a": "builtin:tiny-random",
                                                       "b": "builtin:tiny-random"}
    assert doc["methods"] == [{"stage": "dpo", "a": "dpo (sigmoid)", "b": "dpo (sigmoid)", "changed": False}]
    rows = {(m["role"], m["suite"], m["metric"]): m for m in doc["metrics"]}
    domain = rows[("candidate", "domain/handbook_mcq", "acc")]
    assert domain["comparison"] == "paired" and domain["n"] == 300 and domain["same_model"] is False
    assert domain["change"] == pytest.approx(domain["b"] - domain["a"]) and domain["change"] > 0.1
    assert 0 < domain["ci_low"] < domain["change"] < domain["ci_high"]
    # The incumbent (the base model both times) did not move, and is also the base.
    for role in ("incumbent", "base"):
        same = rows[(role, "domain/handbook_mcq", "acc")]
        assert same["same_model"] and same["change"] == 0 and same["ci_low"] == same["ci_high"] == 0
    assert doc["decision"]["changes"] == ["outcome: fail -> pass", "failed rules: domain -> none"]
    assert doc["policy"] == {"a": "test v1", "b": "test v1", "changes": []}
    summary = " ".join(doc["summary"])
    assert "1 config key changed: dpo.beta 0.1 -> 0.2" in summary
    assert f"candidate's domain/handbook_mcq acc {domain['change']:+.3f} [{domain['ci_low']:+.3f}" in summary
    assert not any(os.path.isabs(s) for s in _strings(doc))  # paths relative to the run, project or run.root
    html = (out / "diff-q1.html").read_text()
    first = html.index("<h2 id=\"summary\">")
    assert first < html.index("dpo.beta 0.1 -&gt; 0.2") < html.index("<h2 id=\"config\">")  # plain words first
    assert '<th scope="row"><code>dpo.beta</code></th><td><code>0.1</code></td><td><code>0.2</code></td>' in html
    assert f"[{domain['ci_low']:+.3f}, {domain['ci_high']:+.3f}]" in html and "<caption>" in html
    assert "<link" not in html and "<script" not in html and "http" not in html.replace("https://", "")


def test_identical_runs_have_no_changes(runs):
    root, make = runs
    cfg, _, _ = make("same1", seed=3)
    make("same2", seed=3)
    result = diff.run(cfg, "same1", "same2", output=root.parent / "out")
    doc = json.loads(result.json.read_text())
    assert result.json == root.parent / "out" / "diff-same1.json"
    assert doc["no_changes"] and doc["summary"] == [
        "No changes: the same config, data, base model, methods, metrics, policy and decision."]
    assert doc["config"] == doc["data"] == doc["policy"]["changes"] == doc["decision"]["changes"] == []
    assert doc["metrics"] and all(m["change"] == 0 and m["comparison"] == "paired" for m in doc["metrics"])
    assert "No changes" in result.html.read_text()


def test_versions_map_to_their_runs_and_other_documents_are_unpaired(runs, tmp_path):
    root, make = runs
    cfg, d1, fp1 = make("v-one", gain=True, seed=4)
    registry.promote(cfg, d1["decision_id"], None)
    cfg2, d2, _ = make("v-two", gain=True, seed=5, train_rows=90,
                       incumbent=(str(root / "v-one" / "dpo" / "adapter"), fp1))
    registry.promote(cfg2, d2["decision_id"], None)
    for path in (root / "v-two" / "eval" / fp1).glob("*/*/summary.json"):  # _evidence names every incumbent the base
        path.write_text(json.dumps({**json.loads(path.read_text()), "model": str(root / "v-one" / "dpo" / "adapter")}))
    # Run B's retention suite was re-scored on other data: its change is unpaired, and says so.
    suite = root / "v-two" / "eval" / d2["candidate"]["fingerprint"] / "retention/general_knowledge"
    _write_suite(root / "v-two" / "eval", d2["candidate"]["fingerprint"], "candidate", "retention/general_knowledge",
                 [1.0] * 150 + [0.0] * 50, data_hash="d2")
    assert (suite / "summary.json").is_file()
    doc = diff.build(cfg, "1", "2", versions=True).model_dump(mode="json")
    assert (doc["a"]["run_id"], doc["a"]["version"], doc["b"]["run_id"], doc["b"]["version"]) == ("v-one", "1", "v-two", "2")
    assert doc["decision"]["a"]["promoted_version"] == "1" and doc["decision"]["b"]["promoted_version"] == "2"
    assert {"key": "counts.train", "a": 80, "b": 90} in doc["data"]
    assert {"key": "gate.incumbent", "a": None, "b": "<runs>/v-one/dpo/adapter"} in doc["config"]
    rows = {(m["role"], m["suite"]): m for m in doc["metrics"]}
    retention = rows[("candidate", "retention/general_knowledge")]
    old = [json.loads(line)["metrics"]["acc"] for line in
           (root / "v-one" / "eval" / fp1 / "retention/general_knowledge" / "samples.jsonl").read_text().splitlines()]
    assert retention["comparison"] == "unpaired" and "data hashes differ" in retention["note"]
    assert retention["change"] == pytest.approx(0.75 - sum(old) / len(old)) and retention["n"] == 200
    # The CI, computed here without harness.stats: scipy's independent bootstrap, and the normal approximation.
    expected = _scipy_unpaired(old, [1.0] * 150 + [0.0] * 50)
    assert (retention["ci_low"], retention["ci_high"]) == pytest.approx(expected)
    half = 1.96 * (0.75 * 0.25 / 200 + (sum(old) / 300) * (1 - sum(old) / 300) / 300) ** 0.5
    assert retention["ci_low"] == pytest.approx(retention["change"] - half, abs=0.015)
    assert retention["ci_high"] == pytest.approx(retention["change"] + half, abs=0.015)
    incumbent = rows[("incumbent", "domain/handbook_mcq")]  # the base model in v-one, v1's candidate in v-two
    assert incumbent["comparison"] == "paired" and incumbent["same_model"] is False
    assert rows[("base", "domain/handbook_mcq")]["comparison"] == "only in one run"


def test_a_cycle_records_its_resolved_config(tmp_path, monkeypatch, capsys):
    """What the diff reads is what a real cycle writes: <run>/config.yaml, the resolved config."""
    import yaml

    from harness.cli import main
    from tests.conftest import learnable_chats, write_jsonl

    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "chats.jsonl", learnable_chats(12))
    args = ["run.id=c1", "model.base=builtin:tiny-random", "gate.incumbent=builtin:tiny-random", "dpo.beta=0.3",
            f"data.sources=[{{path: {tmp_path / 'chats.jsonl'}}}]"]
    assert main(["cycle", *args, "--until", "data"]) == 0
    recorded = yaml.safe_load((tmp_path / "runs" / "c1" / "config.yaml").read_text())
    capsys.readouterr()
    assert main(["config", "show", *args]) == 0
    assert recorded == yaml.safe_load(capsys.readouterr().out) and recorded["dpo"]["beta"] == 0.3


def test_config_from_the_manifests_when_a_run_has_no_config_yaml(runs):
    root, make = runs
    cfg, _, _ = make("m1", seed=6)
    cfg2, _, _ = make("m2", "dpo.beta=0.3", seed=6)
    for c in (cfg, cfg2):
        update_manifest(c.layout().dir, "dpo", {"config": c.dpo.model_dump(mode="json")})
    cfg.layout().resolved_config.unlink()
    doc = diff.build(cfg, "m1", "m2")
    assert doc.config_source == "manifest.json" and [c.key for c in doc.config] == ["dpo.beta"]
    assert any("manifests" in n for n in doc.notes)


def test_bad_input_is_one_clear_error(runs, capsys):
    from harness.cli import main

    root, make = runs
    cfg, decision, _ = make("p1", seed=7)
    registry.promote(cfg, decision["decision_id"], None)  # v1 exists; v7 does not
    make("p2", "registry.model_name=other-model", seed=7)
    base = [f"run.root={root}", "registry.model_name=diff-model"]
    cases = [(["p1", "nope"], "run 'nope' does not exist"),
             (["p1", "p2"], "belong to different projects (registry models 'diff-model' and 'other-model')"),
             (["--versions", "1", "7"], "diff-model has no version 7")]
    for args, message in cases:
        assert main(["report", "diff", *args, *base]) == 2, args
        err = capsys.readouterr().err
        assert message in " ".join(err.split()) and "Traceback" not in err and err.count("error:") == 1
    assert not (root / "p2" / "report").exists()



def _scipy_unpaired(reference, candidate, seed=0, n_resamples=2000):
    import numpy as np
    from scipy.stats import bootstrap

    res = bootstrap((np.asarray(reference), np.asarray(candidate)), lambda x, y, axis: y.mean(axis) - x.mean(axis),
                    paired=False, vectorized=True, n_resamples=n_resamples, method="percentile",
                    random_state=np.random.default_rng(seed))
    return res.confidence_interval.low, res.confidence_interval.high


def test_unpaired_difference_needs_two_items_on_each_side():
    import math

    one = unpaired_difference([1.0], [1.0, 0.0] * 4)  # one reference item: nothing to resample
    assert one["difference"] == -0.5 and math.isnan(one["ci_low"]) and math.isnan(one["ci_high"])
    assert math.isnan(unpaired_difference([0.0, 1.0, 1.0], [0.5])["ci_low"])
    constant = unpaired_difference([1.0, 1.0], [0.0, 0.0, 0.0])  # no spread anywhere: the interval is the point
    assert constant["difference"] == constant["ci_low"] == constant["ci_high"] == -1.0
    varied = unpaired_difference([0.0, 1.0] * 20, [1.0] * 30 + [0.0] * 10)
    assert (varied["ci_low"], varied["ci_high"]) == pytest.approx(_scipy_unpaired([0.0, 1.0] * 20, [1.0] * 30 + [0.0] * 10))


def test_a_single_item_side_is_no_clear_change(tmp_path):
    _write_suite(tmp_path / "a", "fp-a", "m", "domain/handbook_mcq", [1.0], data_hash="d1")
    _write_suite(tmp_path / "b", "fp-b", "m", "domain/handbook_mcq", [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0], data_hash="d2")
    key = ("candidate", "domain/handbook_mcq")
    [row] = metric_changes({key: tmp_path / "a" / "fp-a" / key[1]}, {key: tmp_path / "b" / "fp-b" / key[1]}, ())
    assert row.comparison == "unpaired" and row.change == pytest.approx(-0.625)
    assert row.ci_low is None and row.ci_high is None and "fewer than 2 items" in row.note
    assert not diff._clear(row)


def test_an_unknown_project_is_said_not_skipped(runs):
    root, make = runs
    cfg, _, _ = make("u1", seed=8)
    make("u2", "registry.model_name=other-model", seed=8)
    with pytest.raises(HarnessError, match="different projects"):
        diff.build(cfg, "u1", "u2")
    # Without its config.yaml (and never promoted) run u2's project cannot be told: the diff says so, first.
    (root / "u2" / "config.yaml").unlink()
    result = diff.run(cfg, "u1", "u2")
    doc = json.loads(result.json.read_text())
    said = ("could not check that both runs belong to the same project: run 'u2' has neither config.yaml nor a "
            "promotion in the ledger")
    assert doc["project_checked"] is False and doc["b"]["project"] is None and said in doc["notes"]
    assert doc["summary"][0] == "C" + said[1:] + "." and doc["summary"][1].startswith("No changes") and doc["no_changes"]
    assert "C" + said[1:] in html_lib.unescape(result.html.read_text())
    assert diff.build(cfg, "u1", "u1").project_checked is True


def test_a_malformed_ledger_is_a_note_not_a_traceback(runs, tmp_path):
    root, make = runs
    cfg, d1, _ = make("l1", seed=9)
    registry.promote(cfg, d1["decision_id"], None)
    make("l2", seed=10)
    assert diff.build(cfg, "l1", "l2").decision.a.promoted_version == "1"
    with open(tmp_path / "ledger.jsonl", "a") as f:
        f.write("{not json\n")
    doc = diff.build(cfg, "l1", "l2")
    assert doc.decision.a.promoted_version is None and doc.project_checked
    assert any(n.startswith("the ledger (ledger.jsonl) is unreadable") for n in doc.notes)
    (root / "l1" / "config.yaml").unlink()  # now the project must come from the ledger, which cannot be read
    doc = diff.build(cfg, "l1", "l2")
    assert not doc.project_checked and "run 'l1' has no config.yaml and the ledger is unreadable" in doc.summary[0]
