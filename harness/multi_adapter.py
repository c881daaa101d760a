"""Multi-adapter models: one base model, one adapter per domain, each request answered by its domain's adapter.

A multi-adapter folder (what ``sft.per_domain`` writes as ``<run>/sft/adapter/``) holds one ordinary adapter
folder per domain and a manifest, ``multi_adapter.json``::

    {"format_version": 1, "kind": "multi_adapter", "base": "builtin:smollm2-135m-instruct",
     "adapters": {"support": {"path": "support", "sha256": "..."}, "legal": {"path": "legal", "sha256": "..."}}}

The folder is self-contained (the registry logs it as one artifact and a downloaded copy resolves the same).
:func:`harness.models.resolve` recognizes it (``ModelSpec.kind == "multi-adapter"``; each domain's adapter is in
``spec.meta["adapters"]``, an ordinary adapter spec), its fingerprint covers the base and every adapter, and
:func:`load` loads the base once with every adapter as a PEFT named adapter. :meth:`MultiAdapterModel.generate`
groups requests by domain and answers each group with ``set_adapter(domain)``, greedily.

A request for a domain the model has no adapter for is refused (:class:`~harness.errors.HarnessError`, before
anything is generated), never answered by the bare base or another domain's adapter: an answer from the wrong
weights would look like an answer from the right ones. Stages that take one model (scoring, feedback, the
preference stages) do not load a multi-adapter model: they take one domain's adapter folder.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

__all__ = ["MANIFEST", "FORMAT_VERSION", "DOMAIN_NAME", "is_multi_adapter", "write", "resolve_multi", "adapters",
           "fingerprint_multi", "registry_tags", "load", "MultiAdapterModel", "greedy"]

MANIFEST = "multi_adapter.json"
FORMAT_VERSION = 1
# A domain names a folder and a PEFT adapter (a key of torch ModuleDicts, which refuse dots).
DOMAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def is_multi_adapter(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def write(dest: Path, base: str, domain_adapters: dict[str, Path]) -> Path:
    """Write a multi-adapter folder at ``dest`` (atomically): a copy of each domain's adapter folder and the
    manifest. Each adapter must sit on ``base`` (its ``harness_adapter.json``)."""
    from harness.artifacts import atomic_write_json, sha256_tree, staged_dir
    from harness.models import ADAPTER_META

    entries = {}
    with staged_dir(dest) as tmp:
        for domain, folder in sorted(domain_adapters.items()):
            if not DOMAIN_NAME.match(domain):
                raise HarnessError(f"domain '{domain}' cannot name an adapter",
                                   hint="use letters, digits, '-' and '_' (no dots or spaces)")
            meta = Path(folder) / ADAPTER_META
            own_base = json.loads(meta.read_text(encoding="utf-8")).get("base") if meta.is_file() else None
            if own_base != base:
                raise HarnessError(f"the adapter of domain '{domain}' ({folder}) sits on {own_base!r}, not on {base!r}",
                                   hint="every adapter of a multi-adapter model must be trained on the same base")
            shutil.copytree(folder, tmp / domain)
            entries[domain] = {"path": domain, "sha256": sha256_tree(tmp / domain)}
        atomic_write_json(tmp / MANIFEST, {"format_version": FORMAT_VERSION, "kind": "multi_adapter", "base": base,
                                           "adapters": entries})
    return dest


def _manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path / MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION or not data.get("adapters") \
            or not isinstance(data.get("base"), str):
        raise HarnessError(f"{path / MANIFEST} is not a multi-adapter manifest of format {FORMAT_VERSION} "
                           "(base, adapters: {domain: {path, sha256}})",
                           hint="write it with harness.multi_adapter.write (sft.per_domain does)")
    return data


def resolve_multi(path: Path, ref: str, trust_remote_code: bool = False):
    """The :class:`~harness.models.ModelSpec` of a multi-adapter folder; every adapter is checked against the
    manifest's hash (a changed adapter would answer for its domain unnoticed) and must sit on the manifest's base."""
    from harness.artifacts import sha256_tree
    from harness.models import ModelSpec, resolve

    data = _manifest(path)
    base = resolve(data["base"], trust_remote_code=trust_remote_code)
    specs = {}
    for domain, entry in sorted(data["adapters"].items()):
        folder = (path / entry["path"]).resolve()
        if not folder.is_relative_to(path) or not folder.is_dir():
            raise HarnessError(f"{path / MANIFEST}: the adapter of domain '{domain}' ({entry['path']}) is not a folder "
                               f"inside {path}", hint="write the folder again with harness.multi_adapter.write")
        if sha256_tree(folder) != entry.get("sha256"):
            raise HarnessError(f"the adapter of domain '{domain}' in {path} changed since the manifest was written",
                               hint="train it again (sft.per_domain), or write the folder again")
        spec = resolve(str(folder), trust_remote_code=trust_remote_code)
        if spec.kind != "adapter" or spec.base_spec.location != base.location:
            raise HarnessError(f"the adapter of domain '{domain}' in {path} does not sit on {data['base']}",
                               hint="every adapter of a multi-adapter model must be trained on the same base")
        specs[domain] = spec
    return ModelSpec(ref=ref, kind="multi-adapter", location=str(path), base=base, trust_remote_code=trust_remote_code,
                     meta={"adapters": specs, "sha256": {d: e["sha256"] for d, e in data["adapters"].items()}})


def adapters(spec: Any) -> dict[str, Any]:
    """Each domain's adapter spec of a multi-adapter spec, by domain."""
    if spec.kind != "multi-adapter":
        raise HarnessError(f"{spec.ref} is not a multi-adapter model (no {MANIFEST})")
    return dict(spec.meta["adapters"])


def fingerprint_multi(spec: Any) -> str:
    """Base plus every domain's adapter (each adapter's own fingerprint includes the base)."""
    from harness.artifacts import sha256_bytes
    from harness.models import fingerprint

    parts = [f"{d}:{fingerprint(s)}" for d, s in sorted(adapters(spec).items())]
    return sha256_bytes(("multi|" + "|".join(parts)).encode())[:16]


def registry_tags(spec: Any) -> dict[str, str]:
    """What the registry records of each adapter of a multi-adapter candidate (model-version tags)."""
    from harness.models import fingerprint

    tags = {"adapters": ",".join(sorted(adapters(spec)))}
    for domain, s in sorted(adapters(spec).items()):
        tags[f"adapter.{domain}.path"] = str(Path(s.location).relative_to(spec.location))
        tags[f"adapter.{domain}.sha256"] = spec.meta["sha256"][domain]
        tags[f"adapter.{domain}.fingerprint"] = fingerprint(s)
    return tags


# ---------------------------------------------------------------------------------- loading and routing


def greedy(model: Any, tokenizer: Any, prompts: list[str], *, max_new_tokens: int = 64, batch_size: int = 8) -> list[str]:
    """Greedy answers to user prompts (chat template, left-padded batches of about one length), in prompt order."""
    import torch

    from harness.generate import chat_batches

    out: list[str] = [""] * len(prompts)
    device = next(model.parameters()).device
    for chunk, batch in chat_batches(tokenizer, prompts, batch_size):
        batch = batch.to(device)
        with torch.no_grad():
            ids = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        for i, row in zip(chunk, ids[:, batch["input_ids"].shape[1]:]):
            out[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
    return out


@dataclass
class MultiAdapterModel:
    """The base model once, with every domain's adapter loaded as a PEFT named adapter."""

    spec: Any
    model: Any  # a peft.PeftModel holding one named adapter per domain
    tokenizer: Any

    @property
    def domains(self) -> list[str]:
        return sorted(adapters(self.spec))

    def generate(self, requests: list[tuple[str, str]], *, max_new_tokens: int = 64, batch_size: int = 8) -> list[str]:
        """Answer ``(domain, prompt)`` requests, each with its domain's adapter, in request order."""
        unknown = sorted({d for d, _ in requests} - set(self.domains))
        if unknown:
            raise HarnessError(f"no adapter for domain(s) {', '.join(map(repr, unknown))} in {self.spec.location}",
                               hint="domains of this model: " + ", ".join(self.domains))
        answers: list[str | None] = [None] * len(requests)
        for domain in self.domains:
            wanted = [i for i, (d, _) in enumerate(requests) if d == domain]
            if not wanted:
                continue
            self.model.set_adapter(domain)
            for i, text in zip(wanted, greedy(self.model, self.tokenizer, [requests[i][1] for i in wanted],
                                              max_new_tokens=max_new_tokens, batch_size=batch_size)):
                answers[i] = text
        if any(a is None for a in answers):  # every request was routed above: a gap would shift answers
            raise HarnessError("a request got no answer from its domain's adapter")
        return [a for a in answers if a is not None]


def load(spec: Any, *, dtype: str = "float32", device: str | None = None) -> MultiAdapterModel:
    """Load a multi-adapter model for routing (:meth:`MultiAdapterModel.generate`)."""
    import torch
    from peft import PeftModel

    from harness.models import load_model, load_tokenizer

    specs = adapters(spec)
    base = load_model(spec.base_spec, dtype=dtype)
    first, *rest = sorted(specs)
    model = PeftModel.from_pretrained(base, specs[first].location, adapter_name=first)
    for domain in rest:
        model.load_adapter(specs[domain].location, adapter_name=domain)
    model = model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
    return MultiAdapterModel(spec, model, load_tokenizer(spec.base_spec))
