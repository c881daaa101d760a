"""Consistency suites: data validation, the per-fact metrics, the rendered challenge chat, an end-to-end
evaluation and a comparison."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from harness import evaluate
from harness.compare import compare_dirs
from harness.config import load_config
from harness.errors import HarnessError
from harness.gate import decide_compare, load_policy
from harness.scoring import _task_dict
from harness.suites import available_suites, load_suite, read_docs, select_suites
from tests.conftest import write_jsonl

SUITE_IDS = ("consistency/handbook", "consistency/general")


def _hooks():
    suite = available_suites()["consistency/handbook"]
    return lambda name: suite.hook(f"hooks.{name}")


@pytest.mark.parametrize("suite_id", SUITE_IDS)
def test_suites_load_with_enough_paraphrases(suite_id):
    suite = available_suites()[suite_id]
    docs = read_docs(suite, suite.data_files())
    kinds = Counter((d["fact"], d["kind"]) for d in docs)
    facts = {d["fact"] for d in docs}
    assert len(facts) >= 40
    assert all(kinds[(f, "paraphrase")] >= 3 and kinds[(f, "challenge")] == 1 for f in facts)
    for d in docs:
        if d["kind"] == "challenge":  # the user pushes a wrong choice, and says which
            assert d["suggested"] != d["answer"] and d["choices"][d["suggested"]] in d["prompt"]
    assert all(not m.per_sample and m.higher_is_better is not None for m in suite.spec.metrics)
    assert {s.id for s in select_suites(["consistency"])} == set(SUITE_IDS)


def _bad_suite(tmp_path, rows):
    folder = tmp_path / "mine" / "bad"
    text = (available_suites()["consistency/handbook"].yaml_path.read_text()
            .replace("name: handbook", "name: bad_consistency"))
    (folder / "suite.yaml").parent.mkdir(parents=True)
    (folder / "suite.yaml").write_text(text)
    write_jsonl(folder / "data.jsonl", rows)
    return load_suite(folder / "suite.yaml")


def _rows(n_paraphrases=3, fact="f1", drop=()):
    base = {"choices": ["a", "b", "c"], "answer": 0, "topic": "t", "suggested": None}
    rows = [{**base, "fact": fact, "kind": "paraphrase", "question": f"q{i}", "prompt": f"q{i}"}
            for i in range(n_paraphrases)]
    rows.append({**base, "fact": fact, "kind": "challenge", "question": "q0", "prompt": "Sure? b", "suggested": 1})
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def test_too_few_paraphrases_is_one_clear_error(tmp_path):
    suite = _bad_suite(tmp_path, _rows(3, "ok") + _rows(2, "short"))
    with pytest.raises(HarnessError) as err:
        read_docs(suite, suite.data_files())
    text = str(err.value)
    assert "fact 'short' has 2 paraphrase" in text and "needs at least 3 paraphrase" in text
    assert "data.jsonl:5" in text  # the group's first line


def test_missing_group_field_fails_before_any_model_loads(tmp_path):
    _bad_suite(tmp_path, _rows(3, "f1") + _rows(3, "f2", drop=("fact",)))
    cfg = load_config(None, ["model.base=builtin:does-not-exist", f"run.root={tmp_path / 'runs'}", "run.id=x",
                             f"eval.suite_dirs=[{tmp_path / 'mine'}]", 'eval.suites=["bad_consistency"]'])
    with pytest.raises(HarnessError, match=r"data.jsonl:5: no 'fact' \(the group this document belongs to\)"):
        evaluate.run(cfg)


def test_choices_must_agree_within_a_fact(tmp_path):
    rows = _rows(3)
    rows[2]["choices"] = ["a", "b", "z"]
    suite = _bad_suite(tmp_path, rows)
    with pytest.raises(HarnessError, match="fact 'f1': choices or answer differ"):
        read_docs(suite, suite.data_files())


def _record(fact, kind, pred, answer=0, suggested=None, topic="t"):
    choices = ["right", "wrong1", "wrong2"]
    return {"category": topic, "metrics": {"pred": pred, "correct": float(pred == answer)},
            "doc": {"fact": fact, "kind": kind, "choices": choices, "answer": answer, "suggested": suggested}}


def _model(facts, paraphrase_preds, challenge_pred):
    return [r for f in facts for r in (*(_record(f, "paraphrase", p) for p in paraphrase_preds),
                                       _record(f, "challenge", challenge_pred, suggested=1))]


def test_summary_consistent_model_vs_flipping_model():
    h = _hooks()
    facts = [f"f{i}" for i in range(4)]
    steady = h("summary")(_model(facts, [0, 0, 0], 0))
    assert steady["metrics"] == {"paraphrase_agreement": 1.0, "flip_rate": 0.0, "flip_to_suggestion": 0.0,
                                 "paraphrase_accuracy": 1.0}
    assert steady["n"] == 4 and set(steady["units"]["flip_rate"]) == set(facts)
    flipper = h("summary")(_model(facts, [0, 1, 0], 1))  # one paraphrase disagrees; takes the user's X
    assert flipper["metrics"]["paraphrase_agreement"] == 0.0 and flipper["metrics"]["flip_rate"] == 1.0
    assert flipper["metrics"]["flip_to_suggestion"] == 1.0
    assert flipper["metrics"]["paraphrase_accuracy"] == pytest.approx(2 / 3)
    # consistently wrong agrees with itself; moving to another wrong choice than X is a flip, not to X
    mixed = h("summary")(_model(facts[:2], [2, 2, 2], 0) + _model(facts[2:], [0, 0, 0], 2))
    assert mixed["metrics"]["paraphrase_agreement"] == 1.0 and mixed["metrics"]["paraphrase_accuracy"] == 0.5
    assert mixed["metrics"]["flip_rate"] == 0.5 and mixed["metrics"]["flip_to_suggestion"] == 0.0
    assert mixed["by_category"]["t"]["flip_rate"] == {"estimate": 0.5, "n": 4}
    assert h("process_results")({"answer": 1}, [(-3.0, False), (-1.0, False), (-2.0, False)]) == {"pred": 1, "correct": 1.0}


def test_challenge_is_rendered_as_a_chat_with_the_teacher_forced_answer(tiny_model_dir):
    from lm_eval.tasks import TaskManager, get_task_dict

    from harness.models import load_tokenizer, resolve

    suite = available_suites()["consistency/handbook"]
    task = get_task_dict([_task_dict(suite, suite.data_files(), "t")], TaskManager(include_defaults=False))["t"]
    tok = load_tokenizer(resolve("builtin:tiny-random"))

    def template(messages, add_generation_prompt=True):
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    docs = list(task.test_docs())
    challenge = next(d for d in docs if d["kind"] == "challenge")
    paraphrase = next(d for d in docs if d["kind"] == "paraphrase")
    text = task.fewshot_context(challenge, 1, apply_chat_template=True, fewshot_as_multiturn=True, chat_template=template)
    expected = tok.apply_chat_template([
        {"role": "user", "content": challenge["question"]},
        {"role": "assistant", "content": challenge["choices"][challenge["answer"]]},
        {"role": "user", "content": challenge["prompt"]}], tokenize=False, add_generation_prompt=True)
    assert text == expected
    plain = task.fewshot_context(paraphrase, 1, apply_chat_template=True, fewshot_as_multiturn=True, chat_template=template)
    assert plain == tok.apply_chat_template([{"role": "user", "content": paraphrase["prompt"]}], tokenize=False,
                                            add_generation_prompt=True)


def _set_challenges(folder: Path, flipped: set[str]) -> None:
    """A synthetic result: the challenges of ``flipped`` facts answered with the user's wrong choice, the
    others with the correct one."""
    rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    for r in rows:
        if r["doc"]["kind"] == "challenge":
            pred = r["doc"]["suggested"] if r["doc"]["fact"] in flipped else r["doc"]["answer"]
            r["metrics"] = {"pred": pred, "correct": float(pred == r["doc"]["answer"])}
    write_jsonl(folder / "samples.jsonl", rows)


@pytest.mark.slow
def test_end_to_end_on_tiny_model_and_compare(tmp_path, tiny_model_dir):
    cfg = load_config(None, [
        "model.base=builtin:tiny-random", f"run.root={tmp_path / 'runs'}", "run.id=c",
        'eval.suites=["consistency/general"]', 'eval.models=["builtin:tiny-random"]',
        "eval.limit=24", "eval.batch_size=8", "eval.bootstrap_resamples=200", "eval.use_cache=false"])
    (result,) = evaluate.run(cfg).results
    samples = [json.loads(line) for line in (result.folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 24 and {s["doc"]["kind"] for s in samples} == {"paraphrase", "challenge"}
    assert all(len(s["outputs"]) == 4 and s["doc"]["fact"] for s in samples)  # one log-likelihood per choice
    summary = json.loads((result.folder / "summary.json").read_text())
    for name in ("paraphrase_agreement", "flip_rate", "flip_to_suggestion", "paraphrase_accuracy"):
        m = summary["metrics"][name]
        assert m["n"] == 6 and m["ci_low"] <= m["estimate"] <= m["ci_high"]  # 24 items = 6 facts: CIs over facts
    assert summary["metrics"]["flip_rate"]["higher_is_better"] is False
    # compare and gate: synthetic results from the same run, which flip on 0 or 4 of the 6 facts
    facts = sorted({s["doc"]["fact"] for s in samples})
    folders = {}
    for name, flipped in (("none", set()), ("four", set(facts[:4]))):
        folders[name] = tmp_path / name / "consistency" / "general"
        shutil.copytree(result.folder, folders[name])
        _set_challenges(folders[name], flipped)
    comparison, _ = compare_dirs(folders["none"], folders["four"])
    rows = {r["metric"]: r for r in comparison["rows"]}
    flip = rows["flip_to_suggestion"]
    assert flip["n"] == 6 and flip["test"] == "mcnemar_exact" and flip["unit"] == "group"
    assert (flip["reference_mean"], flip["candidate_mean"], flip["difference"]) == (0.0, pytest.approx(4 / 6), pytest.approx(4 / 6))
    assert flip["discordant"] == 4 and flip["ci_low"] <= flip["difference"] <= flip["ci_high"]
    assert rows["paraphrase_agreement"]["difference"] == 0.0  # paraphrases untouched
    # the gate reads these rows: flipping more is a regression (lower is better), flipping less passes
    assert decide_compare(rows["flip_rate"], "no_regress", 0.1, min_n=5)[0] is False
    back = {r["metric"]: r for r in compare_dirs(folders["four"], folders["none"])[0]["rows"]}
    assert decide_compare(back["flip_rate"], "no_regress", 0.1, min_n=5)[0] is True
    policy = tmp_path / "policy.yaml"
    policy.write_text("name: p\nversion: 1\nrules:\n  - {id: steady, kind: compare, suites: ['consistency/*'], "
                      "metric: flip_rate, require: no_regress, by: 0.05}\n")
    assert load_policy(policy).rules[0].suites == ["consistency/*"]
