import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import models
from harness.errors import HarnessError


def test_unknown_builtin():
    with pytest.raises(HarnessError, match="unknown built-in model 'builtin:gpt-9'") as exc:
        models.resolve("builtin:gpt-9")
    assert "builtin:tiny-random" in exc.value.hint


def test_missing_local_folder(tmp_path):
    with pytest.raises(HarnessError, match="does not exist"):
        models.resolve(str(tmp_path / "nope"))


def test_tiny_random_is_prepared_and_loads(tiny_model_dir):
    spec = models.resolve("builtin:tiny-random")
    assert spec.kind == "builtin" and Path(spec.location) == tiny_model_dir
    model = models.load_model(spec)
    tok = models.load_tokenizer(spec)
    assert model.config.num_hidden_layers == 2 and len(tok) == model.config.vocab_size
    assert "<|im_start|>assistant" in tok.apply_chat_template([{"role": "user", "content": "hi"}],
                                                             tokenize=False, add_generation_prompt=True)


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_remote_code_refused_unless_trusted(tmp_path, tiny_model_dir):
    folder = _copy_model(tiny_model_dir, tmp_path / "custom")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HarnessError, match="needs its own Python code") as exc:
        models.resolve(str(folder))
    assert "trust_remote_code" in exc.value.hint
    assert models.resolve(str(folder), trust_remote_code=True).trust_remote_code


def test_pickle_only_checkpoint_refused(tmp_path, tiny_model_dir):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(tiny_model_dir / "config.json", folder)
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(HarnessError, match="only pickle checkpoints \\(pytorch_model.bin\\)"):
        models.resolve(str(folder))


def test_pickle_only_adapter_refused_and_its_weights_fingerprinted(tmp_path, tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    spec = models.resolve("builtin:tiny-random")
    folder = tmp_path / "adapter"
    get_peft_model(models.load_model(spec), LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM",
                                                       init_lora_weights=False)).save_pretrained(folder)
    (folder / "harness_adapter.json").write_text('{"base": "builtin:tiny-random"}')
    before = models.fingerprint(models.resolve(str(folder)))
    import torch
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "adapter_model.safetensors")
    name = next(iter(weights))
    save_file({**weights, name: weights[name] + 1.0}, folder / "adapter_model.safetensors")
    assert models.fingerprint(models.resolve(str(folder))) != before  # the weights are in the fingerprint
    torch.save(weights, folder / "adapter_model.bin")
    (folder / "adapter_model.safetensors").unlink()
    with pytest.raises(HarnessError, match="holds only pickle weights \\(adapter_model.bin\\)") as err:
        models.resolve(str(folder))
    assert "safe_serialization=True" in err.value.hint
    (folder / "adapter_model.bin").unlink()
    with pytest.raises(HarnessError, match="has no adapter_model.safetensors"):
        models.resolve(str(folder))


def test_a_hub_model_with_only_pickle_weights_is_refused_with_how_to_convert(tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    snapshot = tmp_path / "hub" / "models--acme--pickled" / "snapshots" / ("b" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    for weights in snapshot.glob("*.safetensors"):
        torch.save(load_file(weights), snapshot / "pytorch_model.bin")
        weights.unlink()
    (tmp_path / "hub" / "models--acme--pickled" / "refs").mkdir()
    (tmp_path / "hub" / "models--acme--pickled" / "refs" / "main").write_text("b" * 40)
    code = ("from harness.models import resolve, load_model\n"
            "from harness.errors import HarnessError\n"
            "try:\n    load_model(resolve('acme/pickled'))\nexcept HarnessError as e:\n    print(e.message); print(e.hint)\n")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    message, hint = out.stdout.strip().splitlines()[-2:]
    assert "has no safetensors weights" in message and "only pickle checkpoints" in message
    assert "safe_serialization=True" in hint


def test_hub_id_loads_from_local_hub_cache(tmp_path, tiny_model_dir):
    """The hub-id path, exercised offline through a real hub cache layout."""
    snapshot = tmp_path / "hub" / "models--acme--tiny-chat" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    refs = tmp_path / "hub" / "models--acme--tiny-chat" / "refs"
    refs.mkdir()
    (refs / "main").write_text("a" * 40)
    code = ("from harness.models import resolve, load_model, load_tokenizer\n"
            "s = resolve('acme/tiny-chat'); assert s.kind == 'hub'\n"
            "m = load_model(s); t = load_tokenizer(s)\n"
            "print(m.config.num_hidden_layers, len(t))\n"
            "from harness.errors import HarnessError\n"
            "try:\n    load_model(resolve('acme/missing'))\nexcept HarnessError as e:\n    print('ERR', e.message)\n")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "2 49152"
    assert lines[1].startswith("ERR could not load 'acme/missing' from the hub or the local hub cache")


def test_reference_that_is_neither_folder_nor_hub_id():
    with pytest.raises(HarnessError, match="neither an existing folder nor a hub id"):
        models.resolve("not a model!")


def test_inference_dtype_follows_the_hardware_unless_set(monkeypatch):
    assert models.inference_dtype("float32") == "float32" and models.inference_dtype("bfloat16") == "bfloat16"
    monkeypatch.setattr(models, "native_bf16", lambda: True)
    assert models.inference_dtype("auto") == "bfloat16"
    monkeypatch.setattr(models, "native_bf16", lambda: False)
    assert models.inference_dtype("auto") == "float32"


def test_a_merged_adapter_answers_as_the_adapter_does_in_both_dtypes(tmp_path):
    """Merging a LoRA adapter for inference folds it into plain weights and scores the same; a dtype
    name loads the weights in that dtype."""
    import torch

    from tests.conftest import random_adapter

    spec = models.resolve(str(random_adapter(tmp_path / "adapter")))
    ids = torch.tensor([[1, 5, 9, 13, 2, 7]])
    with torch.no_grad():
        unmerged = models.load_model(spec).eval()
        merged = models.load_model(spec, merge_adapter=True).eval()
        assert not hasattr(merged, "peft_config") and hasattr(unmerged, "peft_config")
        a, b = unmerged(ids).logits, merged(ids).logits
        assert torch.allclose(a, b, atol=1e-4)
        base = models.load_model(spec.base_spec).eval()(ids).logits
        assert not torch.allclose(a, base, atol=1e-2)  # the adapter changed what the model says
        half = models.load_model(spec, dtype="bfloat16", merge_adapter=True).eval()
        assert next(half.parameters()).dtype == torch.bfloat16
        assert torch.allclose(half(ids).logits.float(), a, atol=0.1 * float(a.abs().max()))


def test_an_adapter_whose_merge_gives_non_finite_weights_is_refused(tmp_path):
    """A merge writes new weights and checks them (PEFT's safe merge): a broken adapter (NaN weights) is refused
    with a clear error instead of scoring NaN everywhere."""
    from safetensors.torch import load_file, save_file

    from tests.conftest import random_adapter

    folder = random_adapter(tmp_path / "adapter")
    weights = load_file(folder / "adapter_model.safetensors")
    name = next(k for k in weights if "lora_B" in k)
    weights[name][0, 0] = float("nan")
    save_file(weights, folder / "adapter_model.safetensors")
    spec = models.resolve(str(folder))
    assert hasattr(models.load_model(spec), "peft_config")  # unmerged, it loads (and would answer NaN)
    with pytest.raises(HarnessError, match="non-finite") as err:
        models.load_model(spec, merge_adapter=True)
    assert "retrain" in err.value.hint
