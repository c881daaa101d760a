import pytest

from harness.errors import HarnessError
from rlhf._prefs import folds_by_prompt, prompt_key, split_by_prompt, unpair
from tests.rlhf.conftest import preference_rows


def _with_category(rows, every):
    for i, r in enumerate(rows):
        r["provenance"]["category"] = "safety" if i % every == 0 else "policy"
    return rows


def test_split_is_per_prompt_deterministic_and_stratified():
    rows = preference_rows(40)
    rows += [dict(r, chosen=[{"role": "assistant", "content": "Another good answer."}]) for r in rows[:10]]  # repeated prompts
    rows = _with_category(rows, 5)
    train, held = split_by_prompt(rows, 0.25, seed=1)
    assert len(train) + len(held) == len(rows)
    train_keys, held_keys = {prompt_key(r["prompt"]) for r in train}, {prompt_key(r["prompt"]) for r in held}
    assert not train_keys & held_keys  # every pair of one prompt falls on the same side
    cats = [r["provenance"]["category"] for r in held]
    assert cats.count("safety") == 2 and cats.count("policy") >= 6  # 25 % of each category's 8 and 32 prompts
    assert split_by_prompt(list(reversed(rows)), 0.25, seed=1)[1] == list(reversed(held))  # order does not matter
    assert split_by_prompt(rows, 0.25, seed=2)[1] != held  # the seed matters


def test_split_edge_cases():
    one = preference_rows(1)
    assert split_by_prompt(one, 0.5, 0) == (one, [])
    two = preference_rows(2)
    train, held = split_by_prompt(two, 0.9, 0)
    assert len(train) == 1 and len(held) == 1  # never all held out
    assert split_by_prompt(two, 0.0, 0) == (two, [])


def test_folds_cover_every_pair_once_keep_prompts_whole_and_hold_every_kind():
    rows = _with_category(preference_rows(40), every=4)  # 10 safety and 30 policy prompts
    rows += [dict(r, chosen=[{"role": "assistant", "content": "Another good answer."}]) for r in rows[:10]]
    folds = folds_by_prompt(rows, 3, seed=1)
    assert sorted(map(id, (r for f in folds for r in f))) == sorted(map(id, rows))  # each pair in exactly one fold
    keys = [{prompt_key(r["prompt"]) for r in f} for f in folds]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])  # a prompt never in two folds
    assert sorted(map(len, keys)) == [13, 13, 14]  # 40 prompts dealt evenly
    for f in folds:
        safety = {prompt_key(r["prompt"]) for r in f if r["provenance"]["category"] == "safety"}
        assert len(safety) in (3, 4)  # 10 safety prompts: every fold gets its share
    assert folds_by_prompt(list(reversed(rows)), 3, seed=1)[0] == list(reversed(folds[0]))  # order does not matter
    assert folds_by_prompt(rows, 3, seed=2)[0] != folds[0]  # the seed matters


def test_more_folds_than_prompts_is_one_clear_error():
    with pytest.raises(HarnessError, match="reward.cross_fit_folds=5 needs at least 5 distinct prompts; the preference pairs have 4"):
        folds_by_prompt(preference_rows(4), 5, seed=0)


def test_unpair_keeps_both_sides():
    rows = unpair(preference_rows(3))
    assert [r["label"] for r in rows] == [True, False] * 3
    assert rows[0]["completion"] == preference_rows(3)[0]["chosen"]


def test_preference_rows_holding_an_evaluation_item_are_dropped_counted_or_refused(tmp_path):
    """A preference file handed to reward/DPO/online directly is decontaminated like SFT data."""
    import json

    import pytest

    from harness.config import load_config
    from harness.errors import HarnessError
    from rlhf._prefs import decontaminate, load_pairs, load_prompts

    question = json.loads(open("suites/retention/general_knowledge/data.jsonl").readline())["question"]
    rows = [{"prompt": question, "chosen": "Paris.", "rejected": "Lyon.", "provenance": {"source": "mine.jsonl:1"}},
            {"prompt": "Which queue handles refunds?", "chosen": "Billing.", "rejected": "No idea."}]
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = load_config(None, ['eval.suites=["retention/general_knowledge"]'])
    kept, dropped = decontaminate(load_pairs(path), config, "preference pairs")
    assert dropped == 1 and [r["prompt"][0]["content"] for r in kept] == ["Which queue handles refunds?"]
    prompts, dropped = decontaminate(load_prompts(path), config, "prompts")
    assert dropped == 1 and len(prompts) == 1
    with pytest.raises(HarnessError, match=r"1 preference pairs hold evaluation items \(mine.jsonl:1"):
        decontaminate(load_pairs(path), load_config(None, ['eval.suites=["retention/general_knowledge"]',
                                                           "data.decontaminate=fail"]), "preference pairs")
    assert decontaminate(load_pairs(path), load_config(None, ["data.decontaminate=off"]), "pairs")[1] == 0


def test_the_preference_stages_fingerprint_what_decontamination_checks_against():
    """Another evaluated suite or decontamination setting can drop other pairs: reward, DPO and online RL
    put this key in their fingerprints, so they train again."""
    from harness.config import load_config
    from rlhf._prefs import decontamination_key

    gk = load_config(None, ['eval.suites=["retention/general_knowledge"]'])
    assert decontamination_key(gk) == decontamination_key(load_config(None, ['eval.suites=["retention/general_knowledge"]']))
    assert decontamination_key(gk) != decontamination_key(load_config(None, ['eval.suites=["domain/handbook_mcq"]']))
    assert decontamination_key(gk) != decontamination_key(
        load_config(None, ['eval.suites=["retention/general_knowledge"]', "data.decontaminate=off"]))
