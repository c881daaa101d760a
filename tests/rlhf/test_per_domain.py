"""sft.per_domain: one adapter per data domain on a shared base, written as one multi-adapter model; bad
domains are refused, all at once, before any model is loaded."""

import pytest

from harness import cycle, data, multi_adapter
from harness.artifacts import read_jsonl
from harness.config import load_config
from harness.errors import HarnessError
from harness.models import resolve
from rlhf import per_domain, sft
from tests.conftest import learnable_chats, write_jsonl


def _numbers(n: int = 16) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"Order {i}: what is {i} plus one?"},
                          {"role": "assistant", "content": f"{i} plus one is {i + 1}, order {i}."}]} for i in range(n)]


def _replay(n: int = 12) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"Say hello number {i}."},
                          {"role": "assistant", "content": f"Hello {i}!"}]} for i in range(n)]


def _config(tmp_path, *extra):
    colors = write_jsonl(tmp_path / "colors.jsonl", learnable_chats(16))
    numbers = write_jsonl(tmp_path / "numbers.jsonl", _numbers())
    replay = write_jsonl(tmp_path / "replay.jsonl", _replay())
    return load_config(None, [
        "model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=t", "sft.per_domain=true",
        f"data.sources=[{{path: {colors}, domain: colors}}, {{path: {numbers}, domain: numbers}}]",
        f"data.replay={{path: {replay}, ratio: 0.2}}", "data.decontaminate=off", "data.dedupe.near=false",
        "eval.domain_suites={colors: [domain/handbook_mcq], numbers: [retention/general_knowledge]}",
        "sft.max_steps=3", "sft.batch_size=4", "sft.eval_every=3", "sft.learning_rate=1e-2", "sft.warmup_ratio=0",
        "sft.early_stopping_patience=null", "sft.logging_steps=1", *extra])


def test_bad_domains_are_reported_at_once_before_training(tmp_path, tiny_model_dir):
    cfg = _config(tmp_path, "sft.method=full",
                  "eval.domain_suites={colors: [domain/nope], tax: [domain/handbook_mcq]}")
    with pytest.raises(HarnessError) as exc:
        per_domain.check(cfg)
    text = exc.value.message
    assert "sft.method full makes no adapter" in text
    assert "domain 'numbers' has no suites in eval.domain_suites" in text
    assert "eval.domain_suites.tax: no data source has the domain 'tax'" in text
    assert "eval.domain_suites.colors: unknown suite 'domain/nope'" in text
    data.run(cfg)  # data preparation loads no model; training must not start
    with pytest.raises(HarnessError, match="has no suites"):
        sft.run(cfg)
    assert not cfg.layout().stage("sft").exists()


@pytest.mark.parametrize("extra, message", [
    (["data.sources=[{path: colors.jsonl, domain: colors}]"], "needs at least two"),
    (["data.sources=[{path: colors.jsonl, domain: replay}, {path: numbers.jsonl, domain: numbers}]"], "replay set's domain"),
    (["data.sources=[{path: colors.jsonl, domain: col.ors}, {path: numbers.jsonl, domain: numbers}]"], "cannot name a folder"),
])
def test_domain_problems(tmp_path, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)  # relative source paths resolve against the working directory here
    cfg = _config(tmp_path, *extra)
    with pytest.raises(HarnessError, match=message):
        per_domain.check(cfg)


def test_cycle_refuses_at_start(tmp_path, tiny_model_dir):
    with pytest.raises(HarnessError, match="take one candidate model: feedback") as exc:
        cycle.run(_config(tmp_path, "cycle.align=[]"), until="feedback")
    assert "--until eval" in exc.value.hint
    with pytest.raises(HarnessError, match="domain 'numbers' has no suites"):
        cycle.run(_config(tmp_path, "eval.domain_suites={colors: [domain]}"), until="eval")
    assert not (tmp_path / "runs" / "t" / "data").exists()  # refused before the first stage


@pytest.mark.slow
def test_trains_one_adapter_per_domain(tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    cfg = _config(tmp_path)
    data.run(cfg)
    layout = cfg.layout()
    result = sft.run(cfg)
    assert result.model_path == layout.adapter("sft") and multi_adapter.is_multi_adapter(result.model_path)
    spec = resolve(str(result.model_path))
    assert sorted(multi_adapter.adapters(spec)) == ["colors", "numbers"]
    for domain, m in result.metrics["domains"].items():
        assert m["global_step"] == 3 and m["trainable_tensors_changed"] == m["trainable_tensors"] > 0
        rows = read_jsonl(layout.domain_data("sft", domain) / "train.jsonl")
        assert {r["domain"] for r in rows} == {domain, "replay"}  # its own rows plus its share of replay
        own = sum(r["domain"] == domain for r in rows)
        assert rows and len(rows) - own == round(0.2 / 0.8 * own)
        assert {r["domain"] for r in read_jsonl(layout.domain_data("sft", domain) / "validation.jsonl")} == {domain}
        assert (layout.domain_run("sft", domain) / "adapter" / "adapter_model.safetensors").is_file()
    a, b = (load_file(str(result.model_path / d / "adapter_model.safetensors")) for d in ("colors", "numbers"))
    assert any(not torch.equal(a[k], b[k]) for k in a if "lora_B" in k)  # trained on different data
    again = sft.run(cfg)
    assert again.up_to_date and resolve(str(again.model_path)).kind == "multi-adapter"
    routed = multi_adapter.load(spec, device="cpu").generate([("numbers", "Order 3: what is 3 plus one?"),
                                                              ("colors", "Ticket 1: which queue?")], max_new_tokens=4)
    assert len(routed) == 2
