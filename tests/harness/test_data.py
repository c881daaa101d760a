import json

import pytest

from harness import data
from harness.artifacts import sha256_file
from harness.config import load_config
from harness.errors import HarnessError
from tests.conftest import learnable_chats, write_jsonl


def _cfg(tmp_path, sources, *extra):
    srcs = ", ".join(f"{{path: {p}, domain: {d}}}" for p, d in sources)
    return load_config(None, [f"data.sources=[{srcs}]", f"data.output_dir={tmp_path / 'out'}", *extra])


def test_all_record_shapes_normalize(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "a?"}, {"role": "assistant", "content": "A."}]},
        {"prompt": "b?", "completion": "B."},
        {"instruction": "Summarize", "input": "long text", "output": "short"},
        {"instruction": "Say hi", "output": "hi"},
        {"text": "Plain prose to learn from."},
        {"prompt": [{"role": "user", "content": "c?"}], "completion": [{"role": "assistant", "content": "C."}]},
    ]
    f = write_jsonl(tmp_path / "mixed.jsonl", rows)
    result = data.run(_cfg(tmp_path, [(f, "mix")], "data.min_validation=1", "data.validation_fraction=0.2"))
    out = [json.loads(line) for p in (result.train_path, result.validation_path) for line in p.read_text().splitlines()]
    by_first = {r["messages"][0]["content"]: r["messages"] for r in out}
    assert by_first["Summarize\n\nlong text"][1] == {"role": "assistant", "content": "short"}
    assert by_first["b?"] == [{"role": "user", "content": "b?"}, {"role": "assistant", "content": "B."}]
    assert by_first["Plain prose to learn from."] == [{"role": "assistant", "content": "Plain prose to learn from."}]
    card = json.loads(result.card_path.read_text())
    assert card["inputs"][0]["shapes"] == {"messages": 1, "prompt_completion": 2, "alpaca": 2, "text": 1}


@pytest.mark.parametrize("line, message", [
    ('{"messages": [', "line is not valid JSON"),
    ('{"prompt": "", "completion": "x"}', "'prompt' is missing or empty"),
    ('{"messages": "hello"}', "'messages' must be a list of {role, content}; got str"),
    ('{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}', "'messages[0].role' is 'robot'"),
    ('{"messages": [{"role": "user", "content": "x"}]}', "no assistant message"),
    ('{"messages": [{"role": "assistant", "content": "x"}, {"role": "assistant", "content": "y"}]}',
     "turn 0 is 'assistant': expected 'user'"),
    ('{"messages": [{"role": "user", "content": "x"}, {"role": "user", "content": "y"}, {"role": "assistant", "content": "z"}]}',
     "turn 1 is 'user': expected 'assistant'"),
    ('{"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}, {"role": "assistant", "content": "z"}]}',
     "turn 1 is 'system': only the first turn may be 'system'"),
    ('{"prompt": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "x"}], "completion": "y"}',
     "turn 1 is 'assistant': expected 'user'"),
    ('{"question": "x"}', "none of the known fields"),
    ('[1, 2]', "must be a JSON object"),
])
def test_bad_records_name_file_and_line(tmp_path, line, message):
    good = json.dumps(learnable_chats(1)[0])
    f = tmp_path / "bad.jsonl"
    f.write_text(f"{good}\n{good}\n{line}\n")
    with pytest.raises(HarnessError) as exc:
        data.run(_cfg(tmp_path, [(f, "x")]))
    assert f"{f}:3" in str(exc.value) and message in str(exc.value)
    assert not (tmp_path / "out").exists(), "nothing may be written on bad input"


def test_dedupe_and_drops_recorded(tmp_path):
    rows = learnable_chats(20)
    rows.append(rows[3])  # exact duplicate
    near = json.loads(json.dumps(rows[5]))
    near["messages"][0]["content"] = near["messages"][0]["content"].upper() + "  "  # normalizes to the same text
    rows.append(near)
    words = [f"word{i}" for i in range(80)]
    rows += [{"messages": [{"role": "user", "content": " ".join(words[:60] + [tail])},
                           {"role": "assistant", "content": " ".join(words[60:])}]} for tail in ("one", "two")]
    f = write_jsonl(tmp_path / "d.jsonl", rows)
    result = data.run(_cfg(tmp_path, [(f, "d")], "data.dedupe.threshold=0.8"))
    card = json.loads(result.card_path.read_text())
    assert card["drop_summary"] == {"exact_duplicate": 2, "near_duplicate": 1}
    reasons = {d["where"]: d["reason"] for d in card["drops"]}
    assert reasons[f"{f}:21"] == "exact_duplicate" and reasons[f"{f}:24"] == "near_duplicate"
    assert card["counts"]["train"] + card["counts"]["validation"] == len(rows) - 3


def test_replay_mix_splits_and_card(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", learnable_chats(40, seed=1))
    b = write_jsonl(tmp_path / "b.jsonl", [{"prompt": f"b{i}?", "completion": f"B{i}."} for i in range(20)])
    replay = write_jsonl(tmp_path / "r.jsonl", [{"prompt": f"general {i}?", "completion": f"G{i}."} for i in range(50)])
    cfg = _cfg(tmp_path, [(a, "alpha"), (b, "beta")], f"data.replay={{path: {replay}, ratio: 0.2}}",
               "data.validation_fraction=0.25", "run.seed=7")
    result = data.run(cfg)
    card = json.loads(result.card_path.read_text())
    assert card["counts"]["per_domain"]["alpha"] == {"read": 40, "kept": 40, "train": 30, "validation": 10}
    assert card["counts"]["per_domain"]["beta"] == {"read": 20, "kept": 20, "train": 15, "validation": 5}
    # replay is 20% of the final training set: 45 domain records -> round(0.2/0.8*45) = 11
    assert card["counts"]["replay_added"] == 11 and card["counts"]["train"] == 56
    train = [json.loads(line) for line in result.train_path.read_text().splitlines()]
    assert sum(r["domain"] == "replay" for r in train) == 11
    assert all(r["domain"] != "replay" for r in map(json.loads, result.validation_path.read_text().splitlines()))
    assert card["inputs"][0]["sha256"] == sha256_file(a)
    assert card["outputs"]["train.jsonl"] == sha256_file(result.train_path)
    assert card["lengths"]["train"]["n"] == 56 and card["lengths"]["train"]["words"]["max"] > 0
    # Same inputs and settings: reused, byte for byte.
    again = data.run(cfg)
    assert again.up_to_date and sha256_file(again.train_path) == card["outputs"]["train.jsonl"]


def test_output_folder_with_other_run_refused(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", learnable_chats(20))
    data.run(_cfg(tmp_path, [(a, "a")]))
    before = sha256_file(tmp_path / "out" / "train.jsonl")
    with pytest.raises(HarnessError, match="already holds data prepared from other inputs"):
        data.run(_cfg(tmp_path, [(a, "a")], "run.seed=3"))
    assert sha256_file(tmp_path / "out" / "train.jsonl") == before
    data.run(_cfg(tmp_path, [(a, "a")], "run.seed=3"), force=True)


def test_empty_after_cleaning(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", learnable_chats(5))
    with pytest.raises(HarnessError, match="no records left after cleaning"):
        data.run(_cfg(tmp_path, [(f, "d")], "data.max_chars=10"))


def test_csv_and_parquet_inputs(tmp_path):
    import pandas as pd

    rows = [{"instruction": f"Task {i}", "input": "", "output": f"Done {i}"} for i in range(12)]
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame([{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(12)]).to_parquet(tmp_path / "d.parquet")
    result = data.run(_cfg(tmp_path, [(tmp_path / "d.csv", "csv"), (tmp_path / "d.parquet", "pq")]))
    assert result.counts["per_domain"]["csv"]["kept"] == 12 and result.counts["per_domain"]["pq"]["kept"] == 12
    bad = tmp_path / "bad.csv"
    bad.write_text("instruction,input,output\nok,,fine\n,,missing instruction\n")
    with pytest.raises(HarnessError, match=rf"{bad}:3: 'instruction' is missing or empty"):
        data.run(_cfg(tmp_path / "x", [(bad, "b")]))


def test_missing_file(tmp_path):
    with pytest.raises(HarnessError, match="does not exist"):
        data.run(_cfg(tmp_path, [(tmp_path / "nope.jsonl", "d")]))


def test_hub_dataset_path(tmp_path):
    """`hub:` sources go through datasets.load_dataset; a local dataset folder exercises that path offline."""
    folder = tmp_path / "hub_ds"
    write_jsonl(folder / "train.jsonl", [{"instruction": f"Q{i}", "output": f"A{i}"} for i in range(15)])
    cfg = load_config(None, [f"data.sources=[{{hub: {folder}, split: train, domain: hubby, limit: 10}}]",
                             f"data.output_dir={tmp_path / 'out'}"])
    result = data.run(cfg)
    assert result.counts["per_domain"]["hubby"]["read"] == 10
    card = json.loads(result.card_path.read_text())
    assert card["inputs"][0]["hub"] == {"id": str(folder), "subset": None, "split": "train", "revision": None}
    with pytest.raises(HarnessError, match="could not load hub dataset 'nobody/nothing'"):
        data.run(load_config(None, ["data.sources=[{hub: nobody/nothing}]", f"data.output_dir={tmp_path / 'o2'}"]))


def _suite_doc(suite_id, i=0):
    from harness.suites import available_suites

    suite = available_suites()[suite_id]
    return json.loads(suite.data_files()[0].read_text().splitlines()[i])


def test_rows_holding_an_evaluation_item_are_dropped_counted_or_refused(tmp_path):
    mcq, gk = _suite_doc("domain/handbook_mcq"), _suite_doc("retention/general_knowledge", 1)
    chat = lambda user, answer: {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}  # noqa: E731
    rows = learnable_chats(10) + [
        chat(gk["question"].upper(), "Tokyo."),  # the same test question, another case: exact
        chat(f"Quick quiz for you. {mcq['question']} Answer in one word, please.", "40 hours."),  # a 13-word passage
        chat("What is the most PTO I can carry into the new year?", mcq["choices"][mcq["answer"]]),  # teaches the fact: kept
    ]
    f = tmp_path / "train.jsonl"
    write_jsonl(f, rows)
    suites = "eval.suites=[domain/handbook_mcq, retention/general_knowledge]"
    result = data.run(_cfg(tmp_path, [(f, "d")], suites))
    card = json.loads(result.card_path.read_text())
    assert result.counts["contaminated"] == 2 and card["counts"]["contaminated"] == 2
    from harness.suites import available_suites

    versions = {name: available_suites(())[name].spec.version for name in ("domain/handbook_mcq", "retention/general_knowledge")}
    assert card["decontaminated_against"] == versions  # each suite's version, so a new version is checked again
    found = {d["where"]: d["detail"] for d in card["drops"] if d["reason"] == "contaminated"}
    assert found == {f"{f}:11": "the same text as retention/general_knowledge document gk-0002",
                     f"{f}:12": "a 13-word passage of domain/handbook_mcq document mcq-0001"}
    kept = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()] + \
        [json.loads(x) for x in (tmp_path / "out" / "validation.jsonl").read_text().splitlines()]
    assert sum("carry into the new year" in r["messages"][0]["content"] for r in kept) == 1
    with pytest.raises(HarnessError) as err:  # fail: one clear error, nothing written
        data.run(_cfg(tmp_path / "f", [(f, "d")], suites, "data.decontaminate=fail"))
    assert "2 training rows hold evaluation items" in err.value.message and f"{f}:11" in err.value.message
    assert err.value.exit_code == 2 and not (tmp_path / "f" / "out").exists()
    off = data.run(_cfg(tmp_path / "o", [(f, "d")], suites, "data.decontaminate=off"))
    assert off.counts["contaminated"] == 0 and json.loads(off.card_path.read_text())["decontaminated_against"] == {}
