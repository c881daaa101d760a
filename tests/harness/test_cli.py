import json

import pytest

from harness.cli import main
from tests.conftest import learnable_chats, write_jsonl


def test_bad_config_exits_2_with_one_clear_message(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("run:\n  id: x\nsft:\n  lora:\n    r: -4\n  methd: lora\n")
    assert main(["sft", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "sft.lora.r: Input should be greater than 0, got -4" in err and "sft.methd: unknown key" in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_unknown_method_and_builtin(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["sft", "--model", "builtin:tiny-random", "sft.method=magic"]) == 2
    assert "sft.method" in capsys.readouterr().err
    prepared = tmp_path / "prepared"
    assert main(["data", "prepare", "--input", str(write_jsonl(tmp_path / "d.jsonl", learnable_chats(12))),
                 "--output", str(prepared)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["train"] + out["validation"] == 12 and (prepared / "data_card.json").is_file()
    assert main(["sft", "--model", "builtin:nope", "--data", str(prepared), "run.id=x"]) == 2
    assert "unknown built-in model 'builtin:nope'" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "x" / "sft" / "adapter").exists()


def test_malformed_data_line_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\nnot json\n')
    assert main(["data", "prepare", "--input", str(bad), "--output", str(tmp_path / "out")]) == 2
    assert f"{bad}:2: line is not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_model_folder_exits_2(tmp_path, capsys):
    write_jsonl(tmp_path / "d.jsonl", learnable_chats(12))
    assert main(["data", "prepare", "--input", str(tmp_path / "d.jsonl"), "--output", str(tmp_path / "p")]) == 0
    capsys.readouterr()
    assert main(["sft", "--model", str(tmp_path / "no-model"), "--data", str(tmp_path / "p"),
                 f"run.root={tmp_path / 'runs'}", "run.id=y"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--help"], ["sft", "--help"], ["data", "prepare", "--help"], ["merge", "--help"],
                                  ["models", "list"], ["config", "show"]])
def test_commands_answer(args, capsys):
    assert main(args) == 0


def test_eval_and_compare_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--list"]) == 0
    assert "bias/crows_pairs" in capsys.readouterr().out  # listings go to stdout
    assert main(["eval", "--list", "--json"]) == 0
    suites = {row["suite"]: row for row in json.loads(capsys.readouterr().out)}
    assert suites["bias/crows_pairs"]["metrics"] and suites["domain/handbook_mcq"]["version"] >= 1
    assert main(["eval", "-s", "nonsense", "run.id=x"]) == 2
    assert "unknown suite 'nonsense'" in capsys.readouterr().err
    assert main(["eval", "-m", "builtin:tiny-random", "-s", "general_knowledge", "--limit", "0"]) == 2
    assert "eval.limit" in capsys.readouterr().err
    assert main(["eval", "-m", "builtin:tiny-random", "-s", "general_knowledge", "--limit", "4",
                 "--output", str(tmp_path / "ev"), "eval.bootstrap_resamples=100"]) == 0
    out = json.loads(capsys.readouterr().out)
    folder = out["results"][0]
    assert folder.endswith("retention/general_knowledge")
    model_dir = str(tmp_path / "ev" / folder.split("/ev/")[1].split("/")[0])
    assert main(["eval", "compare", model_dir, model_dir, "--output", str(tmp_path / "cmp.json")]) == 0
    rows = json.loads((tmp_path / "cmp.json").read_text())["rows"]
    assert {r["metric"] for r in rows} == {"acc", "acc_norm"} and all(r["difference"] == 0 for r in rows)
    assert main(["eval", "compare", str(tmp_path / "nothing"), model_dir]) == 2
