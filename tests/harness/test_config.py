from pathlib import Path

import pytest

from harness.config import config_model, load_config, parse_overrides
from harness.errors import HarnessError

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cycle.yaml"
    p.write_text(text)
    return p


def test_defaults_validate():
    cfg = load_config(None)
    assert cfg.sft.method == "lora" and cfg.sft.lora.r == 16
    assert cfg.model.base == "builtin:smollm2-135m-instruct"


def test_unknown_key_names_path_and_line(tmp_path):
    p = _write(tmp_path, "run:\n  id: x\nsft:\n  methd: lora\n")
    with pytest.raises(HarnessError) as exc:
        load_config(p)
    assert f"{p}:4: sft.methd: unknown key" in str(exc.value)


def test_all_errors_reported_at_once(tmp_path):
    p = _write(tmp_path, "sft:\n  method: magic\n  lora:\n    r: -4\n  batch_size: lots\n")
    with pytest.raises(HarnessError) as exc:
        load_config(p)
    text = str(exc.value)
    assert "sft.method" in text and "magic" in text
    assert f"{p}:4: sft.lora.r: Input should be greater than 0, got -4" in text
    assert "sft.batch_size" in text and "'lots'" in text


def test_duplicate_keys_rejected(tmp_path):
    p = _write(tmp_path, "sft:\n  epochs: 1\n  epochs: 2\n")
    with pytest.raises(HarnessError, match=r"cycle.yaml:3: duplicate key 'sft.epochs' \(first at line 2\)"):
        load_config(p)


def test_invalid_yaml_has_line(tmp_path):
    p = _write(tmp_path, "sft:\n  epochs: [1, 2\n")
    with pytest.raises(HarnessError, match=r"cycle.yaml:\d+: not valid YAML"):
        load_config(p)


def test_overrides_are_typed_and_checked(tmp_path):
    p = _write(tmp_path, "sft:\n  max_steps: 100\n")
    cfg = load_config(p, ["sft.max_steps=2", "sft.lora.target_modules=[q_proj, v_proj]", "run.id=x"])
    assert cfg.sft.max_steps == 2 and cfg.sft.lora.target_modules == ["q_proj", "v_proj"]
    with pytest.raises(HarnessError, match="sft.nope: unknown key"):
        load_config(p, ["sft.nope=1"])
    with pytest.raises(HarnessError, match="not of the form"):
        parse_overrides(["sft.max_steps"])



def test_overrides_take_the_type_of_the_field_they_set(tmp_path, capsys):
    from harness.cli import main

    # text fields keep what was written; YAML's null, yes and numbers are not read into them
    cfg = load_config(None, ["model.base=null", "run.id=1e3", "cycle.approver=yes", "feedback.project=123",
                             "cycle.pdf_renderer=chromium"])
    assert cfg.model.base == "null" and cfg.run.id == "1e3" and cfg.cycle.approver == "yes"
    assert cfg.feedback.project == "123" and cfg.cycle.pdf_renderer == "chromium"
    # null unsets a field that may be empty; other fields read YAML (numbers, booleans, lists, mappings)
    cfg = load_config(None, ["cycle.approver=null", "sft.learning_rate=1e-3", "feedback.simulate=yes",
                             "eval.suites=[domain, bias]", "eval.suite_limits={bias/crows_pairs: 8}"])
    assert cfg.cycle.approver is None and cfg.sft.learning_rate == 0.001 and cfg.feedback.simulate is True
    assert cfg.eval.suites == ["domain", "bias"] and cfg.eval.suite_limits == {"bias/crows_pairs": 8}
    # a bad value names the key and what it should be; exit 2 from the command line, nothing written
    assert main(["config", "show", "sft.max_steps=many"]) == 2
    err = capsys.readouterr().err
    assert "sft.max_steps: Input should be a valid integer" in err and "'many'" in err
    assert main(["config", "show", "model.base=null"]) == 0 and "base: 'null'" in capsys.readouterr().out

def test_relative_input_paths_resolve_against_config_folder(tmp_path):
    p = _write(tmp_path, "data:\n  sources:\n    - path: data/a.jsonl\n")
    cfg = load_config(p)
    assert cfg.data.sources[0].path == tmp_path / "data" / "a.jsonl"


def test_source_needs_exactly_one_location():
    with pytest.raises(HarnessError, match="exactly one of 'path'"):
        load_config(None, ["data.sources=[{domain: x}]"])


def test_config_is_frozen():
    cfg = config_model()()
    with pytest.raises(Exception):
        cfg.sft.method = "full"


def test_every_shipped_config_loads():
    shipped = [p for p in REPO.glob("examples/**/*.yaml")]
    assert shipped, "no shipped configs found"
    for p in shipped:
        if p.name.startswith("policy"):  # a gate policy (policy.yaml, policy-extended.yaml), not a cycle config
            from harness.gate import load_policy

            load_policy(p)
        else:
            load_config(p)
