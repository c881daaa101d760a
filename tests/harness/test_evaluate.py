import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import evaluate
from harness.compare import compare_dirs
from harness.config import load_config
from harness.errors import HarnessError
from harness.models import fingerprint, resolve
from rlhf import sft
from tests.conftest import write_jsonl

REPO = Path(__file__).resolve().parents[2]
SHARED_RETENTION = REPO.parent / "shared" / "data" / "retention"


def _cfg(tmp_path, *extra, suites=("general_knowledge",), models=("builtin:tiny-random",)):
    return load_config(None, [
        "model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=e",
        "eval.suites=" + json.dumps(list(suites)), "eval.models=" + json.dumps(list(models)),
        "eval.limit=6", "eval.batch_size=8", "eval.bootstrap_resamples=200", *extra,
    ])


def test_artifacts_and_cache(tmp_path, tiny_model_dir, monkeypatch, capfd):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))  # a private cache for this test
    shutil.copytree(tiny_model_dir.parent / "smollm2-tokenizer", tmp_path / "home/models/smollm2-tokenizer")
    capfd.readouterr()
    first = evaluate.run(_cfg(tmp_path, suites=("general_knowledge", "kl_drift")))
    # lm-eval's own progress bars and model-loading bars go to the run's log, not the terminal
    terminal = "".join(capfd.readouterr())
    log = (tmp_path / "runs/e/eval/lm_eval.log").read_text()
    assert "Running loglikelihood requests" in log and "it/s" in log
    assert "Running loglikelihood requests" not in terminal and "it/s" not in terminal
    assert "retention/general_knowledge on builtin:tiny-random" in terminal  # our own line stays
    assert [r.cached for r in first.results] == [False, False]
    gk = next(r for r in first.results if r.suite == "retention/general_knowledge")
    fp = fingerprint(resolve("builtin:tiny-random"))
    assert gk.folder == tmp_path / "runs/e/eval" / fp / "retention/general_knowledge"
    samples = [json.loads(line) for line in (gk.folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and {"doc_id", "prompt_hash", "target", "outputs", "metrics"} <= set(samples[0])
    assert len(samples[0]["outputs"]) == 4  # one log-likelihood per choice
    summary = json.loads((gk.folder / "summary.json").read_text())
    acc = summary["metrics"]["acc"]
    assert acc["n"] == 6 and acc["ci_low"] <= acc["estimate"] <= acc["ci_high"] and acc["higher_is_better"]
    assert acc["estimate"] == pytest.approx(sum(s["metrics"]["acc"] for s in samples) / 6)
    assert summary["suite_version"] == 1 and summary["data_hash"] and summary["versions"]["lm_eval"]
    assert summary["by_category"]
    kl = next(r for r in first.results if r.suite == "retention/kl_drift")
    assert kl.summary["metrics"]["kl"]["estimate"] == 0.0  # the base model does not drift from itself
    # Unchanged model, suite, data and settings: served from the cache, byte-identical.
    again = evaluate.run(_cfg(tmp_path, "run.id=e2", suites=("general_knowledge", "kl_drift")))
    assert all(r.cached for r in again.results)
    assert (again.results[0].folder / "samples.jsonl").read_bytes() == (gk.folder / "samples.jsonl").read_bytes()
    # Other settings are a miss.
    assert not evaluate.run(_cfg(tmp_path, "run.id=e3", "eval.limit=5")).results[0].cached


def test_changed_model_is_rescored_and_compared(tmp_path, prepared_data):
    cfg = load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=t",
                             f"sft.data_dir={prepared_data}", "sft.max_steps=3", "sft.learning_rate=1e-2",
                             "sft.warmup_ratio=0", "sft.eval_every=100"])
    adapter = sft.run(cfg).model_path
    result = evaluate.run(_cfg(tmp_path, suites=("general_knowledge", "kl_drift"),
                               models=("builtin:tiny-random", str(adapter))))
    by_model = {}
    for r in result.results:
        by_model.setdefault(r.model, {})[r.suite] = r
    base_fp = by_model["builtin:tiny-random"]["retention/kl_drift"].fingerprint
    cand = by_model[str(adapter)]
    assert cand["retention/kl_drift"].fingerprint != base_fp and not cand["retention/kl_drift"].cached
    assert cand["retention/kl_drift"].summary["metrics"]["kl"]["estimate"] > 0
    comparison, path = compare_dirs(tmp_path / "runs/e/eval" / base_fp,
                                    tmp_path / "runs/e/eval" / cand["retention/kl_drift"].fingerprint)
    assert path.is_file() and json.loads(path.read_text())["kind"] == "comparison"
    acc = next(r for r in comparison["rows"] if r["suite"] == "retention/general_knowledge" and r["metric"] == "acc")
    assert acc["n"] == 6 and acc["test"] == "mcnemar_exact" and "p_value" in acc
    assert acc["ci_low"] <= acc["difference"] <= acc["ci_high"]


def test_user_suite_from_jsonl_and_yaml(tmp_path):
    folder = tmp_path / "my_suites" / "support"
    write_jsonl(folder / "questions.jsonl", [{"question": f"Is {i} even?", "choices": ["yes", "no"],
                                              "answer": i % 2} for i in range(8)])
    (folder / "suite.yaml").write_text(
        "name: support_faq\ngroup: domain\nversion: 1\ndescription: Parity questions.\nlicense: CC0-1.0\n"
        "data: questions.jsonl\ntask:\n  output_type: multiple_choice\n  doc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
        "  doc_to_choice: \"{{choices}}\"\n  doc_to_target: \"{{answer}}\"\nmetrics: [{name: acc, higher_is_better: true}]\n")
    result = evaluate.run(_cfg(tmp_path, f"eval.suite_dirs=[{tmp_path / 'my_suites'}]", suites=("support_faq",)))
    assert result.results[0].suite == "domain/support_faq" and result.results[0].summary["n"] == 6


def _suite(tmp_path, yaml_text, data_lines):
    folder = tmp_path / "s" / "bad"
    folder.mkdir(parents=True)
    (folder / "data.jsonl").write_text("".join(line + "\n" for line in data_lines))
    (folder / "suite.yaml").write_text(yaml_text)
    return folder


_GOOD = ("name: bad\ngroup: domain\nversion: 1\ndescription: d\nlicense: x\ndata: data.jsonl\n"
         "validate: {choices_field: choices, label_field: answer}\n"
         "task: {output_type: multiple_choice, doc_to_text: '{{q}}', doc_to_choice: '{{choices}}', doc_to_target: '{{answer}}'}\n"
         "metrics: [{name: acc, higher_is_better: true}]\n")


@pytest.mark.parametrize("yaml_text, lines, message", [
    (_GOOD + "colour: blue\n", ['{"q": "a", "choices": ["x", "y"], "answer": 0}'], "suite.yaml:10: colour: unknown key"),
    (_GOOD, ['{"q": "a", "choices": ["x", "y"], "answer": 0}', '{"q": "b", "choices": ["x"'], "data.jsonl:2: line is not valid JSON"),
    (_GOOD, ['{"q": "a", "choices": ["x", "y"], "answer": 2}'], "data.jsonl:1: 'answer' is 2 but there are 2 choices"),
    (_GOOD.replace("data.jsonl", "missing.jsonl"), [], "missing.jsonl for suite domain/bad does not exist"),
])
def test_bad_suites(tmp_path, yaml_text, lines, message):
    _suite(tmp_path, yaml_text, lines)
    with pytest.raises(HarnessError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate.run(_cfg(tmp_path, f"eval.suite_dirs=[{tmp_path / 's'}]", suites=("bad",)))
    assert not (tmp_path / "runs").exists()


def test_unknown_suite_lists_available(tmp_path):
    with pytest.raises(HarnessError, match="unknown suite 'nope'") as exc:
        evaluate.run(_cfg(tmp_path, suites=("nope",)))
    assert "bias/crows_pairs" in exc.value.hint and "retention/general_knowledge" in exc.value.hint


def test_limit_zero_and_unloadable_model(tmp_path):
    with pytest.raises(HarnessError, match="eval.limit: Input should be greater than 0"):
        _cfg(tmp_path, "eval.limit=0")
    with pytest.raises(HarnessError, match="does not exist"):
        evaluate.run(_cfg(tmp_path, models=(str(tmp_path / "no-model"),)))
    assert not (tmp_path / "runs").exists()


def test_suite_limits_by_name_then_group(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    limits = json.dumps({"retention": 4, "kl_drift": 2})  # the suite's own name wins over its group
    result = evaluate.run(_cfg(tmp_path, f"eval.suite_limits={limits}", suites=("general_knowledge", "kl_drift")))
    counts = {r.suite: len((r.folder / "samples.jsonl").read_text().splitlines()) for r in result.results}
    assert counts == {"retention/general_knowledge": 4, "retention/kl_drift": 2}
    # Without a limit of its own a suite keeps eval.limit (6); a misspelt name is refused before any scoring.
    only_gk = evaluate.run(_cfg(tmp_path, "run.id=e2", 'eval.suite_limits={"retention/general_knowledge": 3}',
                                suites=("general_knowledge", "kl_drift")))
    assert {r.suite: r.summary["metrics"][next(iter(r.summary["metrics"]))]["n"] for r in only_gk.results} == \
        {"retention/general_knowledge": 3, "retention/kl_drift": 6}
    with pytest.raises(HarnessError, match="eval.suite_limits names 'crows': no such suite") as exc:
        evaluate.run(_cfg(tmp_path, "run.id=e3", 'eval.suite_limits={"crows": 5}'))
    assert "bias/crows_pairs" in exc.value.hint
    assert not (tmp_path / "runs/e3").exists()
    # A limit for a suite that is not selected this time (suites overridden) is unused, not an error.
    other = evaluate.run(_cfg(tmp_path, "run.id=e4", 'eval.suite_limits={"bias/crows_pairs": 5}'))
    assert other.results[0].summary["metrics"]["acc"]["n"] == 6


def test_compare_refuses_different_versions_or_data(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    result = evaluate.run(_cfg(tmp_path, "eval.use_cache=false"))
    a = result.results[0].folder
    b = tmp_path / "copy"
    shutil.copytree(a, b)
    summary = json.loads((b / "summary.json").read_text())
    summary["suite_version"] = 2
    (b / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(HarnessError, match="different suite versions"):
        compare_dirs(a, b)
    summary["suite_version"], summary["data_hash"] = 1, "0" * 64
    (b / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(HarnessError, match="different data"):
        compare_dirs(a, b)


def test_group_run_skips_standard_benchmarks_without_local_data(tmp_path):
    result = evaluate.run(_cfg(tmp_path, "eval.limit=2", suites=("retention",)))
    suites = {r.suite for r in result.results}
    assert "retention/general_knowledge" in suites and "retention/arc_easy" not in suites


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_RETENTION.is_dir(), reason="needs ../shared/data/retention (present in CI)")
def test_standard_benchmarks_from_local_copies(tmp_path):
    result = evaluate.run(_cfg(tmp_path, f"eval.retention_data_dir={SHARED_RETENTION}", "eval.limit=4",
                               suites=("arc_easy", "arc_challenge", "mmlu", "wikitext")))
    by_suite = {r.suite: r.summary for r in result.results}
    assert set(by_suite) == {"retention/arc_easy", "retention/arc_challenge", "retention/mmlu", "retention/wikitext"}
    assert by_suite["retention/mmlu"]["n"] == 4 and len(by_suite["retention/mmlu"]["by_category"]) == 4
    assert by_suite["retention/wikitext"]["metrics"]["word_perplexity"]["estimate"] > 1


@pytest.mark.slow
def test_smollm2_scores_are_real(tmp_path):
    """General knowledge well above chance (25 %) for the real model; bias suites produce their metrics."""
    result = evaluate.run(_cfg(tmp_path, "eval.limit=40", suites=("general_knowledge", "crows_pairs", "bbq"),
                               models=("builtin:smollm2-135m-instruct",)))
    by_suite = {r.suite: r.summary for r in result.results}
    gk = by_suite["retention/general_knowledge"]["metrics"]["acc"]
    assert gk["ci_low"] > 0.4, gk
    assert {"amb_bias_score", "disamb_bias_score", "accuracy_amb"} <= set(by_suite["bias/bbq"]["metrics"])
    assert len(by_suite["bias/bbq"]["by_category"]) == 11
    assert 0 <= by_suite["bias/crows_pairs"]["metrics"]["distance_from_50"]["estimate"] <= 50


def test_hellaswag_and_winogrande_from_official_local_files(tmp_path):
    """Small files in the official formats: the suites parse them as lm-eval's tasks would."""
    data = tmp_path / "retention"
    write_jsonl(data / "hellaswag" / "hellaswag_val.jsonl", [
        {"ind": i, "activity_label": "Baking cookies", "ctx_a": "A woman mixes flour and butter.",
         "ctx_b": "she", "endings": ["puts the tray in the oven.", "swims across a lake.", "paints a fence.",
                                    "reads a [title] newspaper."], "label": 0} for i in range(3)])
    write_jsonl(data / "winogrande" / "dev.jsonl", [
        {"qID": f"q{i}", "sentence": "The trophy didn't fit in the suitcase because _ was too big.",
         "option1": "the trophy", "option2": "the suitcase", "answer": "1"} for i in range(3)])
    result = evaluate.run(_cfg(tmp_path, f"eval.retention_data_dir={data}", "eval.limit=3",
                               suites=("hellaswag", "winogrande")))
    by_suite = {r.suite: r for r in result.results}
    hs = [json.loads(line) for line in (by_suite["retention/hellaswag"].folder / "samples.jsonl").read_text().splitlines()]
    assert len(hs) == 3 and len(hs[0]["outputs"]) == 4
    assert hs[0]["doc"]["choices"][3] == "reads a. newspaper."  # lm-eval's preprocessing of "[title]"
    wg = [json.loads(line) for line in (by_suite["retention/winogrande"].folder / "samples.jsonl").read_text().splitlines()]
    assert len(wg) == 3 and len(wg[0]["outputs"]) == 2 and wg[0]["target"] == "was too big."


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_base_and_adapters_share_one_loaded_base_and_score_as_if_each_were_loaded(tmp_path, monkeypatch, dtype):
    """eval.share_base: the base is loaded once for itself and its LoRA/DoRA adapters, each adapter merged
    into it in turn and the weights put back exactly, so every model scores bit for bit as when loaded
    on its own; an adapter that also trains biases (not undone by putting layers back) loads its own base."""
    from harness import scoring
    from tests.conftest import random_adapter

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    adapters = [random_adapter(tmp_path / "lora", seed=1), random_adapter(tmp_path / "dora", seed=2, use_dora=True),
                random_adapter(tmp_path / "bias", seed=3, bias="all")]
    # an adapter first, so the base is scored after weights were merged into it and put back
    models = [str(adapters[0]), "builtin:tiny-random", *map(str, adapters[1:])]
    loads = []
    real_load = scoring.load_model
    monkeypatch.setattr(scoring, "load_model", lambda spec, **kw: loads.append(spec.ref) or real_load(spec, **kw))
    outputs = {}
    for share in (True, False):
        loads.clear()
        result = evaluate.run(_cfg(tmp_path, f"run.id=share-{share}", f"eval.share_base={str(share).lower()}",
                                   f"eval.dtype={dtype}", "eval.use_cache=false", models=models))
        outputs[share] = {r.fingerprint: (r.folder / "samples.jsonl").read_bytes() for r in result.results}
        if share:
            assert loads == ["builtin:tiny-random", str(adapters[2])]  # the base once; the bias adapter on its own
        else:
            assert loads == [str(adapters[0]), "builtin:tiny-random", str(adapters[1]), str(adapters[2])]
    assert outputs[True] == outputs[False]
    assert len(set(outputs[True].values())) == 4  # four models that really answer differently


def test_a_generation_suite_answers_alike_in_batches_and_one_by_one(tmp_path, monkeypatch):
    """lm-eval's batched generation (length-sorted, left-padded, stop sequences per request) gives each
    question the greedy answer it gets alone."""
    from tests.conftest import random_adapter

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    model = str(random_adapter(tmp_path / "adapter"))
    outputs = []
    for batch in (1, 8):
        result = evaluate.run(_cfg(tmp_path, f"run.id=gen-{batch}", f"eval.batch_size={batch}", "eval.dtype=float32",
                                   "eval.limit=12", suites=("handbook_qa",), models=(model,)))
        outputs.append([s["outputs"] for s in evaluate.load_samples(result.results[0].folder)])
    assert outputs[0] == outputs[1] and len(outputs[0]) == 12
    assert len({str(o) for o in outputs[0]}) > 3  # real, differing answers


def test_adapters_whose_attaching_rewrites_the_base_get_a_base_of_their_own(tmp_path):
    """PiSSA/OLoRA/LoftQ-style initializations and layer replication change the base layers when attached, so
    putting the wrapped layers back could not restore the shared base: such adapters are not shared."""
    from harness.models import resolve
    from harness.scoring import _shareable
    from tests.conftest import random_adapter

    folder = random_adapter(tmp_path / "lora")
    assert _shareable(resolve(str(folder)))
    config_file = folder / "adapter_config.json"
    plain = json.loads(config_file.read_text())
    for change in ({"init_lora_weights": "pissa"}, {"init_lora_weights": "olora"}, {"layer_replication": [[0, 2]]},
                   {"modules_to_save": ["lm_head"]}, {"bias": "all"}):
        config_file.write_text(json.dumps({**plain, **change}))
        assert not _shareable(resolve(str(folder))), change


def test_scoring_a_base_model_does_not_import_peft(tmp_path):
    """PEFT (with bitsandbytes, which it imports) is loaded only when an adapter is: importing it cost a base
    model's evaluation about 3 s of its 20 on 2 CPU cores."""
    code = (
        "import json, sys\n"
        "from harness import evaluate\n"
        "from harness.config import load_config\n"
        f"cfg = load_config(None, ['model.base=builtin:tiny-random', 'run.root={tmp_path / 'runs'}', 'run.id=e',\n"
        "    'eval.suites=[\"general_knowledge\"]', 'eval.limit=4', 'eval.use_cache=false', 'eval.bootstrap_resamples=100'])\n"
        "result = evaluate.run(cfg)\n"
        "print(json.dumps([len(result.results), 'peft' in sys.modules, 'bitsandbytes' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [1, False, False]
