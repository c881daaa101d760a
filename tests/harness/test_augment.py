import json
import random

import pytest

from harness import augment, data
from harness.config import load_config
from harness.errors import HarnessError
from tests.conftest import random_adapter, write_jsonl


def _chat(user, answer):
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def _rows(n=20):
    return [_chat(f"Which form do I need for request number {i}?", f"Form F-{i}, signed by your manager.")
            for i in range(n)]


def _cfg(tmp_path, src, *extra, out="out"):
    return load_config(None, [f"data.sources=[{{path: {src}, domain: forms}}]", f"data.output_dir={tmp_path / out}",
                              "data.dedupe.near=false", "data.decontaminate=off", "data.validation_fraction=0.25",
                              *extra])


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_template_paraphrases_train_rows_only_keep_answers_and_are_marked(tmp_path):
    src = write_jsonl(tmp_path / "forms.jsonl", _rows())
    result = data.run(_cfg(tmp_path, src, "data.augment.paraphrase.n=2"))
    train, validation = _read(result.train_path), _read(result.validation_path)
    originals = {r["id"]: r for r in train if "augmented" not in r}
    added = [r for r in train if r.get("augmented") == "paraphrase"]
    assert len(originals) == 15 and len(validation) == 5 and len(added) == 30  # 2 per training record
    assert not any("augmented" in r for r in validation)
    val_prompts = {r["messages"][0]["content"].lower() for r in validation}
    per_source = {}
    for row in added:
        source = originals[row["augmented_from"]]  # a training row, never a validation one
        assert row["messages"][1] == source["messages"][1]  # the same answer
        prompt = row["messages"][0]["content"]
        assert prompt.lower() != source["messages"][0]["content"].lower() and prompt.lower() not in val_prompts
        assert row["domain"] == "forms" and row["source"].startswith(source["source"] + " (paraphrase ")
        per_source.setdefault(row["augmented_from"], set()).add(prompt)
    assert all(len(prompts) == 2 for prompts in per_source.values())  # two distinct rewrites each
    assert len({r["id"] for r in train}) == len(train)

    card = json.loads(result.card_path.read_text())
    entry = card["augmentation"]
    assert entry["method"] == "template" and entry["n"] == 2 and entry["model"] is None
    assert entry["records"] == 15 and entry["generated"] == 30 and entry["kept"] == 30
    assert entry["dropped_duplicates"] == entry["dropped_contaminated"] == 0 and entry["rejected"] == {}
    assert card["counts"]["augmented"] == 30 and card["counts"]["train"] == 45
    assert card["counts"]["per_domain"]["forms"] == {"read": 20, "kept": 20, "train": 15, "validation": 5,
                                                     "paraphrases": 30}


def test_template_paraphrases_are_deterministic_for_a_seed(tmp_path):
    src = write_jsonl(tmp_path / "forms.jsonl", _rows())
    first = data.run(_cfg(tmp_path, src, "data.augment.paraphrase.n=3", out="a")).train_path.read_text()
    again = data.run(_cfg(tmp_path, src, "data.augment.paraphrase.n=3", out="b")).train_path.read_text()
    other = data.run(_cfg(tmp_path, src, "data.augment.paraphrase.n=3", "data.augment.paraphrase.seed=7", out="c"))
    assert first == again
    assert sorted(first.splitlines()) != sorted(other.train_path.read_text().splitlines())
    # the split is not moved by augmentation: the same training originals with or without it
    plain = data.run(_cfg(tmp_path, src, out="d"))
    assert {r["id"] for r in _read(plain.train_path)} == {r["id"] for r in _read(other.train_path) if "augmented" not in r}


def test_template_frames_are_distinct_and_keep_the_prompt():
    prompt = "Which form do I need for a refund?"
    rewrites = augment.template_paraphrases(prompt, len(augment.FRAMES), random.Random(1))
    assert len(set(rewrites)) == len(augment.FRAMES)
    assert all("orm do I need for a refund" in r and r != prompt for r in rewrites)
    assert augment.template_paraphrases(prompt, 4, random.Random(1)) == augment.template_paraphrases(prompt, 4, random.Random(1))
    for seed in range(5):  # "I" (or "NASA") is never lower-cased; "Which" may be
        assert all("I lost my badge" in r for r in augment.template_paraphrases("I lost my badge.", 13, random.Random(seed)))
    lowered = {r for seed in range(5) for r in augment.template_paraphrases(prompt, 13, random.Random(seed))}
    assert any("which form" in r for r in lowered) and any("Which form" in r for r in lowered)


def test_duplicates_of_other_records_are_dropped_and_counted(tmp_path):
    n = len(augment.FRAMES)  # every frame is used, so the colliding ones certainly come up
    cfg = _cfg(tmp_path, write_jsonl(tmp_path / "x.jsonl", _rows(4)), f"data.augment.paraphrase.n={n}")
    row = lambda user, i: {"id": f"r{i}", "domain": "forms", "source": f"x:{i}", **_chat(user, "Form F.")}  # noqa: E731
    train = [row("What is form F?", 1), row("Hi! What is form F?", 2)]  # "Hi! {p}" of row 1 is row 2
    others = [row("What is form F? Thanks!", 3)]  # "{p} Thanks!" of row 1 is a validation row
    added, entry = augment.paraphrase_rows(cfg, train, others)
    assert entry["generated"] == 2 * n and entry["dropped_duplicates"] == 2 and entry["kept"] == 2 * n - 2
    prompts = [r["messages"][0]["content"] for r in added]
    assert "Hi! What is form F?" not in prompts and "What is form F? Thanks!" not in prompts
    assert len(set(prompts)) == len(prompts)


def test_paraphrases_holding_an_evaluation_item_are_dropped(tmp_path):
    folder = tmp_path / "suites" / "forms"
    write_jsonl(folder / "q.jsonl", [{"question": f"Quick question - which form do I need for request number {i}?",
                                      "choices": ["F", "G"], "answer": 0} for i in range(20)])
    (folder / "suite.yaml").write_text(
        "name: forms_quiz\ngroup: domain\nversion: 1\ndescription: Forms.\nlicense: CC0-1.0\n"
        "data: q.jsonl\ntask:\n  output_type: multiple_choice\n  doc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
        "  doc_to_choice: \"{{choices}}\"\n  doc_to_target: \"{{answer}}\"\nmetrics: [{name: acc, higher_is_better: true}]\n")
    src = write_jsonl(tmp_path / "forms.jsonl", _rows())
    result = data.run(_cfg(tmp_path, src, f"data.augment.paraphrase.n={len(augment.FRAMES)}", "data.decontaminate=drop",
                           f"eval.suite_dirs=[{tmp_path / 'suites'}]", "eval.suites=[forms_quiz]"))
    card = json.loads(result.card_path.read_text())
    entry = card["augmentation"]
    assert card["counts"]["contaminated"] == 0  # the originals are clean
    assert entry["dropped_contaminated"] == 15  # each training record's "Quick question - ..." rewrite
    assert entry["kept"] == entry["generated"] - 15 == card["counts"]["augmented"]
    assert not any(r["messages"][0]["content"].lower().startswith("quick question") for r in _read(result.train_path))


@pytest.mark.parametrize("text, expected", [
    ('Sure! Here is the rewritten question: "Which form do I need?"', ("Which form do I need?", None)),
    ("Rewritten question: What form is needed?", ("What form is needed?", None)),
    ("  “What form is needed?”  ", ("What form is needed?", None)),
    ("   ", (None, "empty")),
    ('""', (None, "empty")),
    ("x" * 200, (None, "too_long")),
])
def test_model_output_is_cleaned_or_rejected(text, expected):
    assert augment.clean_rewrite(text, "Which form do I need for request 12?") == expected


@pytest.mark.parametrize("model", ["default", "adapter"])
def test_model_method_counts_are_consistent(tmp_path, model):
    """builtin:tiny-random writes garbage (blank lines bare, words with a random adapter): cleaning and
    rejection run, and every generated rewrite is kept, rejected or dropped."""
    src = write_jsonl(tmp_path / "forms.jsonl", _rows(8))
    extra = [f"data.augment.paraphrase.model={random_adapter(tmp_path / 'adapter')}"] if model == "adapter" else []
    result = data.run(_cfg(tmp_path, src, "model.base=builtin:tiny-random", "data.augment.paraphrase.method=model",
                           "data.augment.paraphrase.max_new_tokens=12", "data.augment.paraphrase.n=2", *extra))
    card = json.loads(result.card_path.read_text())
    entry = card["augmentation"]
    assert entry["method"] == "model" and entry["records"] == 6 and entry["generated"] == 12
    assert entry["model"] == ("builtin:tiny-random" if model == "default" else str(tmp_path / "adapter"))
    assert entry["kept"] + sum(entry["rejected"].values()) + entry["dropped_duplicates"] \
        + entry["dropped_contaminated"] == entry["generated"]
    added = [r for r in _read(result.train_path) if r.get("augmented") == "paraphrase"]
    assert len(added) == entry["kept"] == card["counts"]["augmented"]
    assert all(r["messages"][0]["content"].strip() for r in added)
    if model == "adapter":
        assert entry["kept"] > 0  # words, not blanks: the kept path runs too


@pytest.mark.parametrize("overrides, message", [
    (["data.augment.paraphrase.n=-1"], "data.augment.paraphrase.n"),
    (["data.augment.paraphrase.model=builtin:tiny-random"], "'model' is only used with method: model"),
    (["data.augment.paraphrase.method=backtranslate"], "data.augment.paraphrase.method"),
    (["data.augment.paraphrase.temperature=0", "data.augment.paraphrase.method=model"], "temperature"),
    (["data.augment.synonyms=true"], "data.augment.synonyms"),
])
def test_bad_settings_are_one_clear_error(tmp_path, overrides, message):
    with pytest.raises(HarnessError) as err:
        _cfg(tmp_path, tmp_path / "x.jsonl", *overrides)
    assert message in err.value.message and err.value.exit_code == 2


@pytest.mark.parametrize("overrides, message", [
    (["data.augment.paraphrase.n=14"], "method: template has 13 distinct frames"),
    (["data.augment.paraphrase.method=model", "data.augment.paraphrase.model=./no-such-model"], "does not exist"),
])
def test_unusable_settings_stop_before_anything_is_written(tmp_path, overrides, message):
    src = write_jsonl(tmp_path / "forms.jsonl", _rows())
    with pytest.raises(HarnessError, match=message):
        data.run(_cfg(tmp_path, src, *overrides))
    assert not (tmp_path / "out").exists()


def test_null_or_zero_turns_augmentation_off(tmp_path):
    src = write_jsonl(tmp_path / "forms.jsonl", _rows())
    cfg_file = tmp_path / "cycle.yaml"
    cfg_file.write_text(f"data:\n  sources: [{{path: {src}, domain: forms}}]\n  output_dir: {tmp_path / 'out'}\n"
                        "  decontaminate: 'off'\n  augment:\n    paraphrase: {n: 2}\n")
    assert load_config(cfg_file).data.augment.paraphrase.n == 2
    off = load_config(cfg_file, ["data.augment=null"])
    assert off.data.augment is None
    plain = data.run(off)
    card = json.loads(plain.card_path.read_text())
    assert card["augmentation"] is None and card["counts"]["augmented"] == 0
    assert not any("augmented" in r for r in _read(plain.train_path))
    # n=0 is the same data: the earlier preparation is reused as is
    assert data.run(load_config(cfg_file, ["data.augment.paraphrase.n=0"])).up_to_date
    with pytest.raises(HarnessError, match="prepared from other inputs or settings"):  # augmentation changes the data
        data.run(load_config(cfg_file))
    assert data.run(load_config(cfg_file), force=True).counts["augmented"] == 2 * 18


def test_the_cycle_reruns_the_data_stage_when_augmentation_changes(tmp_path):
    from harness.builtin_stages import DATA
    from harness.cycle import _Runner

    src = write_jsonl(tmp_path / "forms.jsonl", _rows())

    def key(*overrides):
        cfg = load_config(None, [f"run.root={tmp_path / 'runs'}", "run.id=k", f"data.sources=[{{path: {src}}}]",
                                 "gate.incumbent=builtin:tiny-random", *overrides])
        return _Runner(cfg, [DATA], config_file=None, overrides=[], from_stage=None, until=None).key(DATA)

    model = ["data.augment.paraphrase.method=model"]
    keys = [key(), key("data.augment.paraphrase.n=2"), key("data.augment.paraphrase.n=3"), key(*model),
            key(*model, "model.base=builtin:tiny-random")]  # the default rewriting model is model.base
    assert len(set(keys)) == len(keys)


def test_paraphrases_do_not_change_how_much_replay_is_mixed_in(tmp_path):
    src = write_jsonl(tmp_path / "forms.jsonl", _rows())
    general = write_jsonl(tmp_path / "general.jsonl", [_chat(f"What is {i} plus {i}?", f"{2 * i}.") for i in range(40)])
    replay = [f"data.replay={{path: {general}, ratio: 0.2}}"]
    plain = data.run(_cfg(tmp_path, src, *replay, out="plain"))
    both = data.run(_cfg(tmp_path, src, *replay, "data.augment.paraphrase.n=2", out="both"))
    # 15 own training rows either way: ratio 0.2 of them is 4 replay rows, paraphrases or not
    assert plain.counts["replay_added"] == both.counts["replay_added"] == 4
    assert both.counts["augmented"] == 30 and both.counts["train"] == plain.counts["train"] + 30
