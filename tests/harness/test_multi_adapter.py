"""Multi-adapter models: one base, one adapter per domain, each request answered by its own domain's adapter;
the per-domain eval stage; the registry recording each adapter."""

import json
import shutil

import pytest

from harness import multi_adapter, registry
from harness.config import load_config
from harness.errors import HarnessError
from harness.models import fingerprint, load_model, load_tokenizer, resolve
from harness.stage import StageContext
from tests.conftest import random_adapter
from tests.harness.test_registry import _decision, store  # noqa: F401 (a fixture)

PROMPTS = ["What is the refund policy?", "Name a colour of the sky.", "How do I reset my password?"]


@pytest.fixture(scope="module")
def multi(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("multi")
    adapters = {"support": random_adapter(root / "a", seed=0), "legal": random_adapter(root / "b", seed=1)}
    return multi_adapter.write(root / "multi", "builtin:tiny-random", adapters), adapters


def test_resolve_and_fingerprint(multi, tmp_path):
    folder, adapters = multi
    spec = resolve(str(folder))
    assert spec.kind == "multi-adapter" and spec.base_spec.ref == "builtin:tiny-random"
    assert sorted(multi_adapter.adapters(spec)) == ["legal", "support"]
    assert multi_adapter.adapters(spec)["legal"].kind == "adapter"
    fp = fingerprint(spec)
    assert fp not in {fingerprint(resolve(str(a))) for a in adapters.values()} and fp == fingerprint(resolve(str(folder)))
    swapped = multi_adapter.write(tmp_path / "swapped", "builtin:tiny-random",
                                  {"support": adapters["legal"], "legal": adapters["support"]})
    assert fingerprint(resolve(str(swapped))) != fp  # the fingerprint covers which adapter answers for which domain
    with pytest.raises(HarnessError, match="multi-adapter model"):
        load_model(spec)  # one-model code paths refuse it rather than answer from one adapter


def test_changed_adapter_and_bad_names_are_refused(multi, tmp_path):
    folder, adapters = multi
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "legal" / "adapter_model.safetensors").write_bytes(b"not the trained weights")
    with pytest.raises(HarnessError, match="domain 'legal' .* changed since the manifest"):
        resolve(str(copy))
    with pytest.raises(HarnessError, match="cannot name an adapter"):
        multi_adapter.write(tmp_path / "bad", "builtin:tiny-random", {"a.b": adapters["legal"]})
    with pytest.raises(HarnessError, match="sits on 'builtin:tiny-random', not on 'other/base'"):
        multi_adapter.write(tmp_path / "bad2", "other/base", {"a": adapters["legal"]})
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad2").exists()


def test_each_request_is_answered_by_its_domains_adapter(multi):
    folder, adapters = multi
    model = multi_adapter.load(resolve(str(folder)), device="cpu")
    requests = [(d, p) for p in PROMPTS for d in ("legal", "support")]  # interleaved on purpose
    routed = model.generate(requests, max_new_tokens=12, batch_size=2)
    tok = load_tokenizer(resolve("builtin:tiny-random"))
    alone = {}
    for domain, folder_ in adapters.items():  # each adapter loaded by itself, in its own model
        alone[domain] = multi_adapter.greedy(load_model(resolve(str(folder_))).eval(), tok, PROMPTS, max_new_tokens=12)
    expected = [alone[d][PROMPTS.index(p)] for d, p in requests]
    assert routed == expected
    assert alone["legal"] != alone["support"]  # the domains really answer differently
    assert any(a.strip() for a in routed)
    with pytest.raises(HarnessError, match="no adapter for domain.*'tax'.*") as exc:
        model.generate([("legal", "hi"), ("tax", "hi")])
    assert "legal, support" in exc.value.hint


@pytest.mark.slow
def test_eval_stage_scores_each_adapter_on_its_own_suites(multi, tmp_path):
    folder, adapters = multi
    cfg = load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path}", "run.id=r",
                             "eval.suites=[retention/general_knowledge]", "eval.limit=3", "eval.bootstrap_resamples=100",
                             "eval.domain_suites={support: [domain/handbook_mcq], legal: [retention/kl_drift]}",
                             "eval.dtype=float32", "eval.use_cache=false"])
    ctx = StageContext(cfg, cfg.layout(), "builtin:tiny-random", ["sft", "eval"],
                       {"sft": {"outputs": {"model": str(folder)}}})
    from harness.builtin_stages import EVAL

    result = EVAL.run(ctx, cfg.eval)
    scored: dict[str, set] = {}
    for path in result.artifacts:
        summary = json.loads(open(path).read())
        scored.setdefault(summary["model"], set()).add(summary["suite"])
    spec = resolve(str(folder))
    support, legal = (multi_adapter.adapters(spec)[d].location for d in ("support", "legal"))
    assert scored[support] == {"domain/handbook_mcq", "retention/general_knowledge"}
    assert scored[legal] == {"retention/kl_drift", "retention/general_knowledge"}
    assert scored["builtin:tiny-random"] == {"domain/handbook_mcq", "retention/kl_drift", "retention/general_knowledge"}
    gains = result.metrics["domain_gains"]
    assert set(gains) == {"support", "legal"} and "domain/handbook_mcq" in gains["support"]
    drift = gains["legal"]["retention/kl_drift"]  # lower is better: the gain is the difference, sign flipped
    assert drift["higher_is_better"] is False and drift["gain"] == pytest.approx(-drift["difference"])
    assert drift["ci_low"] <= drift["difference"] <= drift["ci_high"] and drift["n"] == 3
    assert "support: handbook_mcq" in result.summary and "legal: kl_drift" in result.summary


@pytest.mark.integration
def test_registry_records_each_adapter(store, multi, tmp_path):  # noqa: F811
    import mlflow

    cfg, run_dir = store
    folder, _ = multi
    _decision(run_dir, "dec-multi", folder, signoff=False)
    r = registry.promote(cfg, "dec-multi", None)
    client = mlflow.MlflowClient()
    version = client.get_model_version("test-model", r.version)
    spec = resolve(str(folder))
    assert version.tags["adapters"] == "legal,support"
    for domain, adapter in multi_adapter.adapters(spec).items():
        assert version.tags[f"adapter.{domain}.sha256"] == spec.meta["sha256"][domain]
        assert version.tags[f"adapter.{domain}.fingerprint"] == fingerprint(adapter)
        assert version.tags[f"adapter.{domain}.path"] == domain
    logged = {f.path for f in client.list_artifacts(version.run_id, "model")}
    assert {"model/legal", "model/support", "model/multi_adapter.json"} <= logged
    assert registry.list_versions(cfg)[-1]["adapters"] == "legal,support"
    # the registry's copy is a multi-adapter model of its own, with the same fingerprint
    copy = mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(tmp_path / "dl"))
    assert fingerprint(resolve(copy)) == fingerprint(spec)
