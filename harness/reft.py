"""Representation fine-tuning (LoReFT): learned low-rank edits of a frozen model's hidden states.

At chosen transformer blocks, the block's output (the residual stream) ``h`` becomes

    h + Rᵀ (W h + b − R h)

where ``R`` (rank × hidden) has orthonormal rows (``torch.nn.utils.parametrizations.orthogonal``) and
``W`` (rank × hidden) and ``b`` (rank) are learned: the edit replaces the projection of ``h`` on R's
row space by a learned affine function of ``h`` and leaves the rest of ``h`` alone. Only R, W and b
train; the base model's weights never change. ``W`` starts equal to ``R`` and ``b`` at 0, so a fresh
intervention leaves the model's answers as they were (like LoRA's zero-initialized ``B``).

The interventions live in the model as a submodule (``model.reft``: moved by ``.to()``, counted by
``parameters()``, seen by an optimizer) and act through forward hooks on the blocks, so the model is a
plain Hugging Face model to every caller: trainers, ``generate`` with its key/value cache, lm-eval.

Positions: ``all`` edits every token (each token's edit depends on that token's state only, so a key/value
cache, padding and padding-free batches need nothing special); ``first:N`` edits the first N tokens of
each sequence, read from the ``position_ids`` the model passes its blocks (padding-free batches restart
them per sequence; generation numbers left-padded prompts from their first real token).

A saved intervention is a folder: ``reft_config.json`` (format version, rank, layers, positions, hidden
size), ``reft_model.safetensors`` (per layer: ``rotation`` R, ``weight`` W, ``bias`` b), the tokenizer
files and ``harness_adapter.json`` naming the base model; :func:`harness.models.resolve` reads it as a
model of kind ``reft``. Interventions act on hidden states at run time: they cannot be merged into the
base weights, served by vLLM, or continued by PEFT (DPO, online RL).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.errors import HarnessError
from harness.models import REFT_CONFIG

__all__ = ["LoReFT", "ReftInterventions", "attach", "detach", "save", "load", "read_config", "parse_positions",
           "decoder_blocks", "find_blocks", "FORMAT_VERSION", "REFT_CONFIG", "REFT_WEIGHTS", "ATTRIBUTE"]

FORMAT_VERSION = 1
REFT_WEIGHTS = "reft_model.safetensors"
ATTRIBUTE = "reft"  # the submodule of the model that holds the interventions
_POSITIONS = re.compile(r"^(all|first:([1-9][0-9]*))$")


def parse_positions(positions: str) -> int | None:
    """``None`` for ``all``, N for ``first:N``; a :class:`HarnessError` for anything else."""
    match = _POSITIONS.match(str(positions).strip())
    if match is None:
        raise HarnessError(f"ReFT positions must be 'all' or 'first:N' (N > 0), got {positions!r}",
                           hint="e.g. positions: all, or positions: first:8")
    return int(match.group(2)) if match.group(2) else None


class LoReFT(nn.Module):
    """One low-rank intervention ``h + Rᵀ(W h + b − R h)`` on vectors of size ``hidden_size``.

    ``trainable``: R is parametrized to keep orthonormal rows through optimizer steps; else R is a plain
    frozen tensor (what is saved), which answers the same without recomputing the parametrization."""

    def __init__(self, hidden_size: int, rank: int, *, dropout: float = 0.0, trainable: bool = True):
        super().__init__()
        if rank <= 0 or rank > hidden_size:
            raise HarnessError(f"ReFT rank must be between 1 and the hidden size {hidden_size}, got {rank}")
        self.rotation = nn.Linear(hidden_size, rank, bias=False)  # R: rank x hidden
        self.source = nn.Linear(hidden_size, rank)  # W (rank x hidden) and b (rank)
        if trainable:
            # Householder map (torch's default for a non-square matrix): cheap for rank << hidden. It keeps
            # the signs in the diagonal of the unconstrained parameter, which weight decay would erase, so
            # the SFT config refuses weight decay for reft.
            nn.utils.parametrizations.orthogonal(self.rotation)
        with torch.no_grad():
            self.source.weight.copy_(self.rotation.weight)  # W = R, b = 0: the edit starts at zero
            self.source.bias.zero_()
        self.dropout = nn.Dropout(dropout)
        for p in self.parameters():
            p.requires_grad_(trainable)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.edit(h)

    def edit(self, h: torch.Tensor) -> torch.Tensor:
        """``Rᵀ(W h + b − R h)`` for every vector along the last axis (computed in the intervention's dtype)."""
        rotation = self.rotation.weight.contiguous()  # as saved: the same arithmetic before and after a reload
        x = h.to(rotation.dtype)
        delta = (self.source(x) - x @ rotation.T) @ rotation
        return self.dropout(delta).to(h.dtype)


class ReftInterventions(nn.Module):
    """The interventions of one model: one :class:`LoReFT` per edited block, and the hooks that apply them."""

    def __init__(self, *, hidden_size: int, rank: int, layers: list[int], positions: str = "all",
                 dropout: float = 0.0, trainable: bool = True):
        super().__init__()
        self.hidden_size, self.rank, self.layers = hidden_size, rank, list(layers)
        self.positions, self.first_n = positions, parse_positions(positions)
        self.dropout = dropout
        self.interventions = nn.ModuleDict({str(i): LoReFT(hidden_size, rank, dropout=dropout, trainable=trainable)
                                            for i in self.layers})
        self._handles: list[Any] = []

    def config(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "type": "loreft", "rank": self.rank, "layers": self.layers,
                "positions": self.positions, "hidden_size": self.hidden_size, "dropout": self.dropout}

    def _hook(self, layer: int):
        intervention = self.interventions[str(layer)]

        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
            h = output[0] if isinstance(output, tuple) else output
            edited = intervention(h)
            if self.first_n is not None:
                position_ids = kwargs.get("position_ids")
                if position_ids is None:
                    raise HarnessError(
                        f"ReFT positions '{self.positions}' need the position ids, and {type(module).__name__} "
                        "is not given them", hint="use positions: all for this architecture")
                keep = (position_ids < self.first_n).unsqueeze(-1)  # (batch or 1, tokens, 1)
                edited = torch.where(keep, edited, h)
            return (edited, *output[1:]) if isinstance(output, tuple) else edited

        return hook

    def hook_into(self, blocks: nn.ModuleList) -> None:
        self.unhook()
        self._handles = [blocks[i].register_forward_hook(self._hook(i), with_kwargs=True) for i in self.layers]

    def unhook(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def state_for_saving(self) -> dict[str, torch.Tensor]:
        """Per layer R (as computed, orthonormal), W and b, contiguous float32 copies."""
        out = {}
        with torch.no_grad():
            for key, module in self.interventions.items():
                out[f"layers.{key}.rotation"] = module.rotation.weight.detach().float().contiguous().cpu()
                out[f"layers.{key}.weight"] = module.source.weight.detach().float().contiguous().cpu()
                out[f"layers.{key}.bias"] = module.source.bias.detach().float().contiguous().cpu()
        return out


def find_blocks(model: Any, *, purpose: str = "", hint: str = "use sft.method lora for this architecture"
                ) -> tuple[str, nn.ModuleList]:
    """The model's transformer blocks, with their module name: the longest ModuleList named layers/h/blocks/layer
    (``rlhf.methods`` freezes by them too). ``purpose`` and ``hint`` word the error for the caller."""
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in ("layers", "h", "blocks", "layer"):
            if best is None or len(module) > len(best[1]):
                best = (name, module)
    if best is None:
        raise HarnessError(f"cannot find the transformer blocks of {type(model).__name__}{purpose}", hint=hint)
    return best


def decoder_blocks(model: Any) -> nn.ModuleList:
    """The model's transformer blocks (:func:`find_blocks`), where ReFT interventions attach."""
    return find_blocks(model, purpose=" to attach ReFT interventions")[1]


def _hidden_size(model: Any) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(config.hidden_size)


def _resolve_layers(layers: str | list[int], n_blocks: int) -> list[int]:
    if layers == "all":
        return list(range(n_blocks))
    chosen = sorted(set(int(i) for i in layers))
    bad = [i for i in chosen if not 0 <= i < n_blocks]
    if bad or not chosen:
        raise HarnessError(f"ReFT layers {bad or '[]'} do not exist: the model has {n_blocks} blocks (0-{n_blocks - 1})",
                           hint=f"set sft.reft.layers to block indices from 0 to {n_blocks - 1}, or 'all'")
    return chosen


def _install(model: Any, interventions: ReftInterventions) -> ReftInterventions:
    if getattr(model, ATTRIBUTE, None) is not None:
        raise HarnessError("this model already carries ReFT interventions", hint="detach them first")
    device = next(model.parameters()).device
    interventions.to(device)
    setattr(model, ATTRIBUTE, interventions)  # a submodule: .to(), parameters() and optimizers see it
    interventions.hook_into(decoder_blocks(model))
    return interventions


def attach(model: Any, *, rank: int = 4, layers: str | list[int] = "all", positions: str = "all",
           dropout: float = 0.0) -> ReftInterventions:
    """Fresh trainable interventions on ``model``, whose own parameters are frozen."""
    blocks = decoder_blocks(model)
    interventions = ReftInterventions(hidden_size=_hidden_size(model), rank=rank, layers=_resolve_layers(layers, len(blocks)),
                                      positions=positions, dropout=dropout, trainable=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return _install(model, interventions)


def detach(model: Any) -> ReftInterventions | None:
    """Remove ``model``'s interventions (hooks and submodule); returns them, or None when it had none."""
    interventions = getattr(model, ATTRIBUTE, None)
    if interventions is None:
        return None
    interventions.unhook()
    delattr(model, ATTRIBUTE)
    return interventions


def read_config(folder: str | Path) -> dict[str, Any]:
    """``reft_config.json`` of a saved intervention folder, checked."""
    path = Path(folder) / REFT_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"cannot read {path}: {exc}") from None
    if config.get("format_version") != FORMAT_VERSION or config.get("type", "loreft") != "loreft":
        raise HarnessError(f"{path} has format version {config.get('format_version')} of type {config.get('type')}; "
                           f"this harness reads LoReFT format version {FORMAT_VERSION}",
                           hint="save it again with this version of the harness")
    missing = [k for k in ("rank", "layers", "positions", "hidden_size") if k not in config]
    if missing:
        raise HarnessError(f"{path} lacks {', '.join(missing)}")
    return config


def save(model: Any, folder: str | Path) -> Path:
    """Write ``model``'s interventions to ``folder`` (config and weights; the caller adds tokenizer and base)."""
    from safetensors.torch import save_file

    from harness.artifacts import atomic_write_json

    interventions = getattr(model, ATTRIBUTE, model if isinstance(model, ReftInterventions) else None)
    if interventions is None:
        raise HarnessError("the model carries no ReFT interventions to save")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(interventions.state_for_saving(), str(folder / REFT_WEIGHTS), metadata={"format": "pt"})
    atomic_write_json(folder / REFT_CONFIG, interventions.config())
    return folder


def load(model: Any, folder: str | Path, *, is_trainable: bool = False) -> ReftInterventions:
    """Attach the interventions saved in ``folder`` to ``model`` (its base, loaded, whose own parameters
    are frozen). Frozen too unless ``is_trainable`` (then R is parametrized again to stay orthonormal,
    starting from the saved R)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    hidden = _hidden_size(model)
    if int(config["hidden_size"]) != hidden:
        raise HarnessError(f"the ReFT interventions in {folder} were trained on a model of hidden size "
                           f"{config['hidden_size']}, but this base model has {hidden}",
                           hint="load them on the base model named in harness_adapter.json")
    layers = _resolve_layers(config["layers"], len(decoder_blocks(model)))
    weights_path = folder / REFT_WEIGHTS
    if not weights_path.is_file():
        raise HarnessError(f"ReFT folder {folder} has no {REFT_WEIGHTS}")
    weights = load_file(str(weights_path))
    interventions = ReftInterventions(hidden_size=hidden, rank=int(config["rank"]), layers=layers,
                                      positions=config["positions"], dropout=float(config.get("dropout", 0.0)),
                                      trainable=is_trainable)
    with torch.no_grad():
        for key, module in interventions.interventions.items():
            try:
                rotation, weight, bias = (weights[f"layers.{key}.{n}"] for n in ("rotation", "weight", "bias"))
            except KeyError as exc:
                raise HarnessError(f"{weights_path} lacks {exc.args[0]}") from None
            module.rotation.weight = rotation if is_trainable else nn.Parameter(rotation, requires_grad=False)
            module.source.weight.copy_(weight)
            module.source.bias.copy_(bias)
    for p in model.parameters():  # the base is frozen, as PEFT freezes it under an adapter
        p.requires_grad_(False)
    if not is_trainable:
        interventions.eval()
        for p in interventions.parameters():
            p.requires_grad_(False)
    return _install(model, interventions)
