"""harness sweep: planning and bad input (fast), the table and Pareto marks (fast, synthetic), and a real
two-method sweep on the tiny model (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.errors import HarnessError
from harness.sweep import plan_variants
from harness.sweep_table import build_table, markdown, pareto, pareto_axes
from tests.conftest import learnable_chats, write_jsonl


@pytest.fixture
def sweep_config(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "chats.jsonl", learnable_chats(40))
    config = {
        "run": {"id": "base"},
        "model": {"base": "builtin:tiny-random"},
        "data": {"sources": [{"path": "chats.jsonl", "domain": "tickets"}], "dedupe": {"near": False}},
        "sft": {"max_steps": 4, "batch_size": 4, "eval_every": 2, "warmup_ratio": 0, "learning_rate": 1.0e-2},
        "eval": {"suites": ["domain/handbook_mcq", "retention/general_knowledge", "bias/crows_pairs"], "limit": 8,
                 "bootstrap_resamples": 200},
    }
    path = tmp_path / "cycle.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_variants_cover_methods_grid_and_seeds(sweep_config):
    base, variants = plan_variants(sweep_config, [], ["lora", "ia3"], seeds=2, grid=["sft.lora.r=4,8"])
    names = [v.name for v in variants]
    # the LoRA rank varies LoRA only; IA3 does not read it, so it is not trained twice
    assert names == ["lora-lora.r4-s42", "lora-lora.r4-s43", "lora-lora.r8-s42", "lora-lora.r8-s43", "ia3-s42", "ia3-s43"]
    # the seed is always in the folder name: a later --seeds 3 reuses the seed-42 runs of --seeds 1
    assert [v.name for v in plan_variants(sweep_config, [], ["ia3"])[1]] == ["ia3-s42"]
    assert {v.group for v in variants} == {"lora-lora.r4", "lora-lora.r8", "ia3"}
    assert all(v.seed in (42, 43) for v in variants)
    assert ("sft.lora.r", "8") in variants[2].grid


def test_grid_compares_replay_and_paraphrase_on_separate_data(sweep_config):
    from harness.config import load_config
    from harness.sweep import _data_key

    write_jsonl(sweep_config.parent / "general.jsonl", learnable_chats(10, seed=5))
    replay = ["data.replay.path=general.jsonl"]
    _, variants = plan_variants(sweep_config, replay, ["lora"], grid=["data.replay.ratio=0,0.2",
                                                                      "data.augment.paraphrase.n=0,2"])
    assert [v.group for v in variants] == ["lora-replay.ratio0-paraphrase.n0", "lora-replay.ratio0-paraphrase.n2",
                                           "lora-replay.ratio0.2-paraphrase.n0", "lora-replay.ratio0.2-paraphrase.n2"]
    keys = {_data_key(load_config(sweep_config, [*replay, *v.overrides])) for v in variants}
    assert len(keys) == 4  # each combination prepares its own data; methods of one combination share it


@pytest.mark.parametrize("methods, grid, message", [
    (["lora", "telepathy"], [], "unknown tuning method"),
    ([], [], "no tuning method"),
    (["lora", "lora"], [], "named twice"),
    (["lora"], ["sft.method=full"], "cannot vary sft.method"),
    (["lora"], ["sft.lora.r"], "is not KEY=V1,V2"),
    (["lora"], ["sft.lora.r=0"], "invalid configuration"),  # checked before anything trains
    (["lora"], ["sft.no_such_key=1"], "invalid configuration"),
    (["lora"], ["sft.per_domain=true,false"], "the sweep sets it"),
    (["lora"], ["sft.lora.r=8,8"], "share the name"),
])
def test_bad_input_is_refused_before_training(sweep_config, methods, grid, message):
    with pytest.raises(HarnessError, match=message):
        plan_variants(sweep_config, [], methods, grid=grid)
    assert not (sweep_config.parent / "runs").exists()  # nothing written


def test_per_method_settings_reach_only_their_method(sweep_config):
    _, variants = plan_variants(sweep_config, [], ["lora", "freeze"], per_method=["freeze:sft.learning_rate=2e-4"])
    by = {v.method: v for v in variants}
    assert "sft.learning_rate=2e-4" in by["freeze"].overrides
    assert not any("learning_rate" in o for o in by["lora"].overrides)
    with pytest.raises(HarnessError, match="not swept"):
        plan_variants(sweep_config, [], ["lora"], per_method=["ia3:sft.learning_rate=1e-2"])
    with pytest.raises(HarnessError, match="METHOD:KEY=VALUE"):
        plan_variants(sweep_config, [], ["lora"], per_method=["sft.learning_rate=1e-2"])
    with pytest.raises(HarnessError, match="invalid configuration"):
        plan_variants(sweep_config, [], ["lora"], per_method=["lora:sft.learning_rate=-1"])


def test_cli_bad_method_exits_2(sweep_config, capsys):
    from harness.cli import main

    assert main(["sweep", "--config", str(sweep_config), "--methods", "lora,nope"]) == 2
    assert "unknown tuning method" in capsys.readouterr().err


def test_pareto_marks_only_undominated_rows():
    def row(g, k, t):
        return {"domain_gain": g, "retention_change": k, "cost": {"train_seconds": t}}

    rows = [row(0.2, -0.05, 100), row(0.1, -0.05, 100), row(0.1, 0.0, 50), row(0.3, -0.2, 300), row(None, 0, 1)]
    # row 1 is beaten by row 0 (more gain, same forgetting and time); row 4 has no gain figure
    assert pareto(rows) == [True, False, True, True, False]
    # no retention suite in the sweep: the axis is left out rather than leaving every row unmarked
    no_retention = [row(0.2, None, 100), row(0.1, None, 50), row(0.05, None, 80)]
    assert pareto_axes(no_retention) == ["domain_gain", "train_seconds"]
    assert pareto(no_retention) == [True, True, False]


def _samples(folder: Path, suite: str, values: list[float], metric: str = "acc") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "samples.jsonl", [{"doc_id": i, "task": "t", "doc_hash": f"h{i}", "metrics": {metric: v}}
                                           for i, v in enumerate(values)])
    (folder / "summary.json").write_text(json.dumps({
        "schema_version": 1, "kind": "eval_summary", "n": len(values),
        "suite": suite, "suite_version": 1, "data_hash": "d", "model": str(folder), "model_fingerprint": folder.name,
        "metrics": {metric: {"estimate": sum(values) / len(values), "higher_is_better": True}}}))
    return folder


def test_table_pools_seeds_over_documents(tmp_path):
    n = 40
    base_d = _samples(tmp_path / "b" / "d", "domain/x", [0.0] * n)
    base_r = _samples(tmp_path / "b" / "r", "retention/y", [1.0] * n)
    records = []
    for seed, hits in ((1, 30), (2, 10)):
        cand_d = _samples(tmp_path / f"c{seed}" / "d", "domain/x", [1.0] * hits + [0.0] * (n - hits))
        cand_r = _samples(tmp_path / f"c{seed}" / "r", "retention/y", [1.0] * (n - 4) + [0.0] * 4)
        records.append({"variant": {"name": f"lora-s{seed}", "group": "lora", "seed": seed, "grid": []},
                        "method": "lora", "base_model": "m",
                        "suites": {"domain/x": {"base": str(base_d), "candidate": str(cand_d)},
                                   "retention/y": {"base": str(base_r), "candidate": str(cand_r)}},
                        "cost": {"train_seconds": 10.0 * seed, "trainable_parameters": 100, "total_parameters": 1000},
                        "latency": {"tokens_per_s_ratio": 0.8, "ttft_ratio": 1.1, "base": {"tokens_per_s": 10.0},
                                    "candidate": {"tokens_per_s": 8.0}}})
    table = build_table(records, seed=0)
    (row,) = table["rows"]
    domain = next(e for e in row["effects"] if e["suite"] == "domain/x")
    assert domain["difference"] == pytest.approx(0.5)  # mean of 30/40 and 10/40
    assert domain["ci_low"] > 0 and domain["test"] == "bootstrap_over_seeds_and_documents"
    # the seeds disagree (0.75 vs 0.25): the interval holds that spread, not only the documents' one
    assert domain["ci_high"] - domain["ci_low"] > 0.4 and domain["verdict"] == "better"
    assert [round(s["difference"], 3) for s in domain["per_seed"]] == [0.75, 0.25]
    assert row["retention_change"] == pytest.approx(-0.1)
    assert row["cost"]["train_seconds"] == pytest.approx(15.0)
    assert row["pareto"] is True
    text = markdown(table)
    assert "| lora | 1,2 | n/a | +0.500 [" in text and "-0.100" in text


def test_lower_is_better_metrics_count_a_rise_as_worse(tmp_path):
    base = _samples(tmp_path / "b", "retention/kl_drift", [0.0] * 30, metric="kl")
    cand = _samples(tmp_path / "c", "retention/kl_drift", [0.5] * 15 + [0.7] * 15, metric="kl")
    for f in (base, cand):  # kl: lower is better
        summary = json.loads((f / "summary.json").read_text())
        summary["metrics"]["kl"]["higher_is_better"] = False
        (f / "summary.json").write_text(json.dumps(summary))
    record = {"variant": {"name": "ia3-s1", "group": "ia3", "seed": 1, "grid": []}, "method": "ia3", "base_model": "m",
              "suites": {"retention/kl_drift": {"base": str(base), "candidate": str(cand)}},
              "cost": {"train_seconds": 5.0}, "latency": None}
    (row,) = build_table([record])["rows"]
    (effect,) = row["effects"]
    assert effect["difference"] > 0 and effect["verdict"] == "worse"
    assert row["retention_change"] == pytest.approx(-effect["difference"])  # more drift = more forgetting


@pytest.mark.slow
def test_two_method_sweep_on_the_tiny_model(sweep_config):
    from harness import sweep

    result = sweep.run(sweep_config, [], ["lora", "ia3"], sweep_id="s1", latency_prompts=2, latency_tokens=4)
    rows = {r["variant"]: r for r in result.table["rows"]}
    assert set(rows) == {"lora", "ia3"}
    for r in rows.values():
        suites = {e["suite"] for e in r["effects"]}
        assert suites == {"domain/handbook_mcq", "retention/general_knowledge", "bias/crows_pairs"}
        c = r["cost"]
        assert 0 < c["trainable_parameters"] < c["total_parameters"]
        assert c["peak_rss_mb"] > 0 and c["adapter_bytes"] > 0 and c["train_seconds"] > 0
        assert r["latency"]["base_tokens_per_s"] > 0 and r["latency"]["tokens_per_s_ratio"] > 0
    # IA3 trains far fewer parameters than LoRA
    assert rows["ia3"]["cost"]["trainable_parameters"] < rows["lora"]["cost"]["trainable_parameters"]
    assert any(r["pareto"] for r in rows.values())
    folder = result.folder
    assert (folder / "sweep.md").is_file() and (folder / "sweep.json").is_file()
    html = (folder / "sweep.html").read_text()
    assert "data:image/png;base64," in html and "lora" in html and "ia3" in html
    # the two variants trained on one prepared split, and the base was scored once (cache)
    assert len(list((folder / "data").iterdir())) == 1
    records = {n: json.loads((folder / n / "sweep_variant.json").read_text()) for n in ("lora-s42", "ia3-s42")}
    assert records["ia3-s42"]["base_from_cache"]  # the base is scored once (by the first variant, or earlier)
    assert {r["suites"][s]["base"] for r in records.values() for s in r["suites"]} == {
        records["lora-s42"]["suites"][s]["base"] for s in records["lora-s42"]["suites"]}
    before = records["lora-s42"]["finished"]
    again = sweep.run(sweep_config, [], ["lora", "ia3"], sweep_id="s1", latency_prompts=2, latency_tokens=4)
    assert json.loads((folder / "lora-s42" / "sweep_variant.json").read_text())["finished"] == before  # not re-run
    assert [r["variant"] for r in again.table["rows"]] == ["lora", "ia3"]
    # A sweep killed after IA3's fine-tuning, before its record: the re-run keeps the trained adapter (no
    # second training) and evaluates it; LoRA is left alone.
    adapter = Path(records["ia3-s42"]["candidate"])
    trained_at = adapter.stat().st_mtime_ns
    (folder / "ia3-s42" / "sweep_variant.json").unlink()
    resumed = sweep.run(sweep_config, [], ["lora", "ia3"], sweep_id="s1", latency_prompts=2, latency_tokens=4)
    redone = json.loads((folder / "ia3-s42" / "sweep_variant.json").read_text())
    assert redone["cost"]["sft_reused"] and adapter.stat().st_mtime_ns == trained_at
    assert json.loads((folder / "lora-s42" / "sweep_variant.json").read_text())["finished"] == before
    assert {r["variant"] for r in resumed.table["rows"]} == {"lora", "ia3"}
