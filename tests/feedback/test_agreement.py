import numpy as np
import pytest

from feedback.agreement import _alpha, agreement, resolve_labels
from feedback.preferences import build
from feedback.pull import normalize_annotation

NAN = np.nan


def test_krippendorff_alpha_reference_values():
    """Krippendorff (2011), 'Computing Krippendorff's Alpha-Reliability': 4 coders, 12 units, missing data."""
    data = np.array([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ])
    assert _alpha(data, "nominal") == pytest.approx(0.743, abs=1e-3)
    assert _alpha(data, "ordinal") == pytest.approx(0.815, abs=1e-3)


def _row(task, who, choice, rating=None, i=[0]):
    i[0] += 1
    return {"annotation_id": i[0], "task_key": f"t{task}", "annotator": who, "choice": choice, "rating": rating,
            "flags": {"candidate": [], "incumbent": []}, "updated_at": f"2026-01-01T00:00:{i[0] % 60:02d}"}


def test_cohens_kappa_reference_value():
    """The textbook 2x2 example (20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no): kappa = 0.4."""
    rows, t = [], 0
    for a, b, n in (("candidate", "candidate", 20), ("candidate", "incumbent", 5),
                    ("incumbent", "candidate", 10), ("incumbent", "incumbent", 15)):
        for _ in range(n):
            t += 1
            rows += [_row(t, "ann", a), _row(t, "bob", b)]
    stats = agreement(rows)
    assert stats["cohens_kappa_mean"] == pytest.approx(0.4)
    assert stats["fleiss_kappa"] == pytest.approx(0.3939, abs=1e-3)  # Fleiss' kappa for the same 2-rater table
    assert stats["per_reviewer"]["ann"] == {"annotations": 50, "compared": 50, "disagreement_rate": pytest.approx(0.3)}


def test_perfect_agreement_and_resolution_policies():
    rows = [_row(1, "a", "candidate", 5), _row(1, "b", "candidate", 5), _row(2, "a", "tie", 3), _row(2, "b", "tie", 3),
            _row(3, "a", "candidate", 4), _row(3, "b", "incumbent", 2), _row(4, "a", "incumbent", 1),
            _row(4, "b", "incumbent", 2), _row(4, "c", "candidate", 3)]
    stats = agreement(rows)
    assert stats["annotators"] == ["a", "b", "c"] and stats["tasks"] == 4
    r = resolve_labels(rows, "majority")
    assert r["t1"]["label"] == "candidate" and r["t2"]["label"] == "tie"
    assert r["t3"].get("dropped") == "no_majority"
    assert r["t4"]["label"] == "incumbent" and r["t4"]["share"] == pytest.approx(2 / 3)
    assert resolve_labels(rows, "drop_ties")["t2"]["dropped"] == "tie"
    assert resolve_labels(rows, "drop_low_agreement", 0.7)["t4"]["dropped"] == "low_agreement"
    same = [_row(9, "a", "candidate"), _row(9, "b", "candidate")]
    assert agreement(same)["krippendorff_alpha_preference_nominal"] is None  # undefined with one value


def test_a_reviewer_who_answers_twice_counts_once():
    rows = [_row(1, "a", "incumbent"), _row(1, "a", "candidate"), _row(1, "b", "candidate")]
    assert resolve_labels(rows)["t1"]["votes"] == {"candidate": 2}


def test_normalize_maps_sides_and_skips_unknown_shapes():
    meta = {"task_key": "k", "prompt_id": "p", "candidate_side": "right"}
    ann = {"id": 5, "completed_by": 3, "lead_time": 2.0, "result": [
        {"from_name": "comparison", "type": "pairwise", "value": {"selected": "right"}},
        {"from_name": "flags_right", "type": "choices", "value": {"choices": ["Privacy"]}},
        {"from_name": "aspect_facts", "type": "choices", "value": {"choices": ["Right"]}},
        {"from_name": "aspect_concise", "type": "choices", "value": {"choices": ["Same"]}},
        {"from_name": "aspect_safe", "type": "choices", "value": {"choices": ["Left"]}},
        {"from_name": "rating", "type": "rating", "value": {"rating": 4}},
        {"from_name": "rationale", "type": "textarea", "value": {"text": ["ok"]}}]}
    row, why = normalize_annotation(ann, {"id": 1}, meta, {3: "scripted-reviewer-1@harness.local"})
    assert why is None and row["choice"] == "candidate" and row["flags"] == {"candidate": ["Privacy"], "incumbent": []}
    assert row["simulated"] and row["rating"] == 4 and row["rationale"] == "ok"
    assert row["aspects"] == {"facts": "candidate", "concise": "tie", "safe": "incumbent"}  # sides mapped back
    odd = {"id": 6, "result": [{"from_name": "sentiment", "type": "labels", "value": {"labels": ["x"]}}]}
    assert normalize_annotation(odd, {"id": 1}, meta, {}) == (None, "unknown_shape")
    assert normalize_annotation({"id": 7, "result": []}, {"id": 1}, meta, {}) == (None, "no_preference")


def test_a_label_under_the_shared_admin_login_is_nobodys_review():
    from feedback.server import ADMIN_EMAIL

    meta = {"task_key": "k", "prompt_id": "p", "candidate_side": "left"}
    ann = {"id": 8, "completed_by": 1, "result": [{"from_name": "comparison", "type": "pairwise", "value": {"selected": "left"}}]}
    assert normalize_annotation(ann, {"id": 1}, meta, {1: ADMIN_EMAIL}) == (None, "shared_admin_account")
    row, _ = normalize_annotation(ann, {"id": 1}, meta, {1: "ana@example.org"})
    assert row["annotator"] == "ana@example.org" and not row["simulated"] and row["choice"] == "candidate"


def test_on_a_server_of_your_own_the_token_owners_labels_are_nobodys_review():
    """With feedback.url, the harness works under the account whose token it was given (not the local
    admin): that login is left out too, matched case-insensitively, and reviewers' own accounts count."""
    from types import SimpleNamespace

    from feedback.server import ADMIN_EMAIL, harness_accounts

    client = SimpleNamespace(users=SimpleNamespace(whoami=lambda: SimpleNamespace(email="Ops-Bot@Corp.example")))
    own = harness_accounts(client)
    assert own == {ADMIN_EMAIL, "ops-bot@corp.example"}
    meta = {"task_key": "k", "prompt_id": "p", "candidate_side": "left"}
    ann = {"id": 8, "completed_by": 5, "result": [{"from_name": "comparison", "type": "pairwise", "value": {"selected": "left"}}]}
    assert normalize_annotation(ann, {"id": 1}, meta, {5: "Ops-Bot@Corp.example"}, own) == (None, "shared_admin_account")
    assert normalize_annotation(ann, {"id": 1}, meta, {5: "ana@corp.example"}, own)[0]["annotator"] == "ana@corp.example"


def test_preference_rows_and_rates():
    tasks = {f"t{i}": {"prompt": f"P{i}", "prompt_id": f"p{i}", "task_id": i,
                       "candidate": {"ref": "cand", "response": f"C{i}"}, "incumbent": {"ref": "inc", "response": f"I{i}"}}
             for i in (1, 2, 3)}
    rows = [_row(1, "a", "candidate"), _row(1, "b", "candidate"), _row(2, "a", "incumbent"), _row(2, "b", "incumbent"),
            _row(3, "a", "tie"), _row(3, "b", "tie")]
    rows[0]["flags"]["candidate"] = ["Harmful"]
    prefs, _, summary = build(rows, tasks)
    assert [(p["prompt"][0]["content"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in prefs] == [
        ("P1", "C1", "I1"), ("P2", "I2", "C2")]
    assert prefs[0]["provenance"]["reviewers"] == ["a", "b"] and prefs[0]["provenance"]["agreement"] == 1.0
    assert summary["win_rate"]["estimate"] == pytest.approx(0.5)  # win, loss, tie
    assert summary["unsafe_rate"]["estimate"] == pytest.approx(1 / 3) and summary["unsafe_rate"]["flagged"] == 1


def test_win_rate_follows_the_resolution_policy():
    tasks = {f"t{i}": {"prompt": f"P{i}", "prompt_id": f"p{i}", "candidate": {"ref": "c", "response": "C"},
                       "incumbent": {"ref": "i", "response": "I"}} for i in (1, 2)}
    rows = [_row(1, "a", "candidate"), _row(1, "b", "candidate"), _row(2, "a", "tie"), _row(2, "b", "tie")]
    assert build(rows, tasks, policy="majority")[2]["win_rate"]["estimate"] == pytest.approx(0.75)
    dropped = build(rows, tasks, policy="drop_ties")[2]
    assert dropped["win_rate"]["estimate"] == 1.0 and dropped["win_rate"]["n"] == 1
    stale = rows + [{**_row(3, "a", "incumbent"), "task_key": "gone"}]
    assert build(stale, tasks)[2]["annotations"] == 4  # reviews of tasks not pushed by this run are ignored


def test_rating_mode_preferences():
    tasks = {f"{who}{i}": {"prompt": f"P{i}", "prompt_id": f"p{i}", "task_key": f"{who}{i}", "mode": "rating", "rated": who,
                           "candidate": {"ref": "cand", "response": f"C{i}"}, "incumbent": {"ref": "inc", "response": f"I{i}"}}
             for i in (1, 2, 3) for who in ("c", "i")}

    def rated(key, who, rating, flags=()):
        row = _row(0, who, None, rating)
        row.update(task_key=key, prompt_id="p" + key[1], rated="candidate" if key[0] == "c" else "incumbent")
        row["flags"] = {row["rated"]: list(flags), "incumbent" if row["rated"] == "candidate" else "candidate": []}
        return row

    rows = [rated("c1", "a", 5), rated("c1", "b", 4), rated("i1", "a", 2), rated("i1", "b", 3),   # candidate wins
            rated("c2", "a", 1, ["Harmful"]), rated("i2", "a", 4),                                  # incumbent wins
            rated("c3", "a", 3), rated("i3", "b", 3)]                                                 # tie
    prefs, stats, summary = build(rows, tasks)
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in prefs] == [("C1", "I1"), ("I2", "C2")]
    assert prefs[0]["provenance"]["mean_rating"] == {"candidate": 4.5, "incumbent": 2.5}
    assert summary["resolved"] == {"candidate": 1, "incumbent": 1, "tie": 1}
    assert summary["win_rate"]["estimate"] == pytest.approx(0.5)
    assert summary["unsafe_rate"]["flagged"] == 1 and summary["unsafe_rate"]["n"] == 3
    assert stats["krippendorff_alpha_rating_ordinal"] is not None


def test_export_leaves_out_pairs_a_preference_stage_cannot_train_on(tmp_path):
    from feedback import preferences
    from harness.artifacts import read_jsonl
    from harness.config import load_config
    from tests.conftest import write_jsonl

    config = load_config(None, ["model.base=builtin:tiny-random", f"run.root={tmp_path}", "run.id=x"])
    responses = {1: ("C1", "I1"), 2: ("", "I2"), 3: ("same", "same"), 4: ("C4", "  ")}
    write_jsonl(tmp_path / "x/feedback/tasks.jsonl", [
        {"task_key": f"t{i}", "prompt": f"P{i}", "prompt_id": f"p{i}", "task_id": i,
         "candidate": {"ref": "cand", "response": c}, "incumbent": {"ref": "inc", "response": r}}
        for i, (c, r) in responses.items()])
    write_jsonl(tmp_path / "x/feedback/annotations.jsonl",
                [_row(i, who, "candidate") for i in responses for who in ("a", "b")])
    result = preferences.run(config)
    kept = read_jsonl(result.preferences_path)
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in kept] == [("C1", "I1")]
    assert result.pairs == 1 and result.summary["pairs"] == 1
    assert result.summary["dropped"]["empty_or_identical_pair"] == 3
    # The judgements still count as evidence: the win rate is over all four reviewed tasks.
    assert result.summary["win_rate"]["n"] == 4 and result.summary["win_rate"]["estimate"] == 1.0
