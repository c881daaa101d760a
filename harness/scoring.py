"""Scoring one model on one suite: lm-eval tasks built from suite files (``HFLM``, or lm-eval's vLLM
model for ``eval.backend: vllm``), and the KL-drift suite against a reference model. Each returns one
record per document (doc id, prompt hash, target, outputs, per-sample metrics)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import sha256_bytes
from harness.config import EvalConfig
from harness.errors import HarnessError
from harness.models import ModelSpec, attach_adapter, inference_dtype, load_model, load_tokenizer, merged
from harness.suites import Suite, read_docs

__all__ = ["ModelSlot", "SharedBase", "score_lm_eval", "score_kl_drift", "vllm_model_args", "check_backend", "LOG_SOFTMAX_DTYPE"]

# log-probabilities in float32 whatever the model computes in: in bfloat16 (lm-eval's default for a bfloat16
# model) a sentence's summed log-likelihood near -140 is rounded to whole units
LOG_SOFTMAX_DTYPE = "float32"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _task_dict(suite: Suite, files: list[Path], task_name: str) -> dict[str, Any]:
    task: dict[str, Any] = {"task": task_name, "test_split": "test", "metadata": {"version": suite.version}}
    fields = dict(suite.spec.task)
    for key in ("process_results", "process_docs", "custom_dataset", "doc_to_text", "doc_to_target", "doc_to_choice"):
        if isinstance(fields.get(key), str) and fields[key].startswith("hooks."):
            fields[key] = suite.hook(fields[key])
    fewshot = dict(fields.get("fewshot_config") or {})
    if isinstance(fewshot.get("sampler"), str) and fewshot["sampler"].startswith("hooks."):
        # a ContextSampler subclass of the suite's own (e.g. one that returns a document's earlier turns)
        fields["fewshot_config"] = {**fewshot, "sampler": suite.hook(fewshot["sampler"])}
    task.update(fields)
    if "custom_dataset" not in task:
        task["dataset_path"] = suite.data_format(files)
        task["dataset_kwargs"] = {"data_files": {"test": [str(f) for f in files]}}
    else:
        task["metadata"]["data_files"] = [str(f) for f in files]
    task["metric_list"] = [{"metric": m.name, "aggregation": "mean", "higher_is_better": m.higher_is_better}
                           for m in suite.spec.metrics if m.per_sample]
    return task


def score_lm_eval(suite: Suite, lm: Any, files: list[Path], cfg: EvalConfig, seed: int) -> list[dict[str, Any]]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    if not files and suite.spec.builtin_task:  # lm-eval's own task definition and hub data
        task: Any = suite.spec.builtin_task
        manager = TaskManager()
    else:
        task = _task_dict(suite, files, f"harness_{suite.spec.group}_{suite.spec.name}")
        manager = TaskManager(include_defaults=False)
    try:
        out = simple_evaluate(
            model=lm, tasks=[task], task_manager=manager,
            limit=cfg.limit, log_samples=True, bootstrap_iters=0, apply_chat_template=suite.spec.chat,
            random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        )
    except (ConnectionError, OSError) as exc:
        raise HarnessError(f"{suite.id}: could not load its data: {str(exc).splitlines()[0]}",
                           hint="offline, point eval.retention_data_dir at local copies (arc/, mmlu/, wikitext-2-raw/)") from None
    samples = [{**s, "task": name} for name in sorted(out["samples"]) for s in out["samples"][name]]
    return _records(suite, samples)


def _records(suite: Suite, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = []
    for s in sorted(samples, key=lambda s: (s["task"], s["doc_id"])):
        doc = s["doc"]
        records.append({
            # lm-eval groups (e.g. mmlu) number documents per subtask: the task name keeps ids unique
            "task": s["task"], "doc_id": s["doc_id"], "prompt_hash": s["prompt_hash"], "doc_hash": s["doc_hash"],
            "target": _jsonable(s["target"]),
            "category": doc.get(suite.spec.category_field) if suite.spec.category_field else None,
            "outputs": _jsonable(s["filtered_resps"]),
            # every value process_results produced (summary hooks may need more than the declared metrics)
            "metrics": {name: _jsonable(s[name]) for name in s.get("metrics", []) if name in s},
            "doc": _jsonable(doc),
        })
    return records


def score_kl_drift(suite: Suite, model: Any, tokenizer: Any, reference: Any, ref_tokenizer: Any,
                    files: list[Path], cfg: EvalConfig) -> list[dict[str, Any]]:
    """Mean per-token KL(model || reference) of next-token distributions on general text."""
    import torch
    import torch.nn.functional as F

    if tokenizer.get_vocab() != ref_tokenizer.get_vocab():
        raise HarnessError("the KL-drift suite needs the evaluated model and the reference model to share a tokenizer",
                           hint="set eval.reference_model to the evaluated model's own base model")
    docs = read_docs(suite, files)[: cfg.limit or None]
    records = []
    for i, doc in enumerate(docs):
        ids = {k: v.to(model.device) for k, v in
               tokenizer(doc["text"], return_tensors="pt", truncation=True, max_length=256).items()}
        with torch.no_grad():
            logp = F.log_softmax(model(**ids).logits.float(), -1)[0, :-1]
            logq = F.log_softmax(reference(**ids).logits.float(), -1)[0, :-1]
        kl = (logp.exp() * (logp - logq)).sum(-1)
        records.append({"doc_id": i, "prompt_hash": sha256_bytes(doc["text"].encode()), "target": None,
                        "category": doc.get(suite.spec.category_field) if suite.spec.category_field else None,
                        "outputs": {"tokens": int(kl.numel())},
                        "metrics": {"kl": max(0.0, float(kl.mean()))}, "doc": doc})
    return records


def eval_device(cfg: EvalConfig) -> str:
    """Where evaluation runs: eval.device, with auto = CUDA when there is a GPU."""
    return _device(cfg)


def _device(cfg: EvalConfig) -> str:
    import torch

    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return cfg.device


def _shareable(spec: ModelSpec) -> bool:
    """Whether ``spec``'s adapter changes nothing but the weights of the layers it wraps, so that merging it
    into a shared base and putting those weights back leaves the base as it was (LoRA, DoRA, IA3... without
    whole modules, biases or token rows of its own)."""
    from peft import PeftConfig

    config = PeftConfig.from_pretrained(spec.location)
    # LoRA/DoRA with a plain initialization, or IA3: attaching them leaves the base weights as they are (PiSSA,
    # OLoRA, LoftQ... initializations rewrite the base layer when attached, layer replication rebuilds layers)
    plain_init = getattr(config, "init_lora_weights", True) in (True, False, "gaussian")
    return (config.peft_type in ("LORA", "IA3")  # PeftType is a str enum
            and plain_init and not getattr(config, "layer_replication", None)
            and not getattr(config, "modules_to_save", None) and getattr(config, "bias", "none") == "none"
            and not getattr(config, "trainable_token_indices", None))


class SharedBase:
    """One base model in memory for an evaluation's base and the adapters on it (``eval.share_base``).

    Models take turns: an adapter is merged into the shared weights for its suites (PEFT's safe merge, which
    writes each merged weight to a new tensor), and before the next model the layers it changed get their
    own weights back, the tensors themselves, bit for bit (what costs one copy of those layers, not a second
    model; writing the merge into the base's weights instead took 1.2 s more for a 135M model, whose weights
    are mapped from their file and copied page by page on a first write). Adapters that also replace whole modules,
    biases or token rows, and prompt-learning adapters, get a base of their own, as without sharing."""

    def __init__(self, cfg: EvalConfig):
        self.cfg = cfg
        self.key: tuple | None = None
        self.model: Any = None
        self._saved: list[tuple[Any, Any]] = []  # (parameter, its tensor before the current adapter's merge)

    def _restore(self) -> None:
        if self.model is not None:  # ReFT interventions leave the weights alone: taking them off restores the base
            from harness import reft

            reft.detach(self.model)
        for param, value in self._saved:
            param.data = value
        self._saved = []

    def take(self, spec: ModelSpec) -> Any:
        """``spec`` as a model ready for inference: the shared base, with ``spec``'s adapter merged if it has one."""
        dtype = inference_dtype(self.cfg.dtype)
        if spec.kind == "adapter" and not _shareable(spec):
            _log.info(f"loading {spec.describe()} in {dtype}")
            return load_model(spec, dtype=dtype, merge_adapter=True).eval().to(_device(self.cfg))
        self._restore()
        base = spec.base_spec
        key = (base.kind, base.location, base.revision, dtype, _device(self.cfg))
        if key != self.key:
            self.model = None  # the previous base goes before the next one loads
            _log.info(f"loading {spec.describe()} in {dtype}")
            self.model = load_model(base, dtype=dtype).eval().to(_device(self.cfg))
            self.key = key
        elif spec.kind in ("adapter", "reft"):
            _log.info(f"merging adapter {spec.location} into the base model already loaded" if spec.kind == "adapter"
                      else f"attaching ReFT interventions {spec.location} to the base model already loaded")
        if spec.kind == "reft":
            from harness import reft

            reft.load(self.model, spec.location)
            return self.model
        if spec.kind != "adapter":
            return self.model
        from peft.tuners.tuners_utils import BaseTunerLayer  # here: importing PEFT costs a base model 2-3 s

        peft_model = attach_adapter(self.model, spec)
        self._saved = [(p, p.data) for module in peft_model.modules() if isinstance(module, BaseTunerLayer)
                       for p in module.get_base_layer().parameters(recurse=False)]
        return merged(peft_model)


class ModelSlot:
    """Loads a model (and its lm-eval wrapper) on first use, once for all suites; from ``shared`` when given
    (the base model already in memory), else on its own."""

    def __init__(self, spec: ModelSpec, cfg: EvalConfig, shared: SharedBase | None = None):
        self.spec, self.cfg, self.shared = spec, cfg, shared
        self.model = self.tokenizer = self._lm = None

    def _device(self) -> str:
        return _device(self.cfg)

    def load(self):
        if self.model is None:
            if self.shared is not None:
                self.model = self.shared.take(self.spec)
            else:
                dtype = inference_dtype(self.cfg.dtype)
                _log.info(f"loading {self.spec.describe()} in {dtype}")
                self.model = load_model(self.spec, dtype=dtype, merge_adapter=True).eval().to(self._device())
            self.tokenizer = load_tokenizer(self.spec)
        return self.model, self.tokenizer

    def lm(self):
        if self._lm is None and self.cfg.backend == "vllm":
            from lm_eval.models.vllm_causallms import VLLM

            _log.info(f"loading {self.spec.describe()} into vLLM")
            self._lm = VLLM(**vllm_model_args(self.spec, self.cfg))
        if self._lm is None:
            from lm_eval.models.huggingface import HFLM

            from harness.prefix_lm import SharedPrefixHFLM

            model, tok = self.load()
            lm_class = SharedPrefixHFLM if self.cfg.shared_prefix else HFLM
            self._lm = lm_class(pretrained=model, tokenizer=tok, batch_size=self.cfg.batch_size, device=self._device(),
                                max_length=self.cfg.max_length, softmax_dtype=LOG_SOFTMAX_DTYPE)
        return self._lm


def vllm_model_args(spec: ModelSpec, cfg: EvalConfig) -> dict[str, Any]:
    """Arguments for lm-eval's vLLM model: the base weights, and an adapter as a LoRA module."""
    import json

    base = spec.base_spec
    args: dict[str, Any] = {
        "pretrained": base.location if base.kind != "hub" else base.ref, "tokenizer": spec.location if spec.kind != "hub" else spec.ref,
        "dtype": cfg.vllm.dtype, "tensor_parallel_size": cfg.vllm.tensor_parallel_size,
        "gpu_memory_utilization": cfg.vllm.gpu_memory_utilization, "max_model_len": cfg.max_length,
        "batch_size": "auto", "seed": cfg.seed if cfg.seed is not None else 1234,
    }
    if base.revision:
        args["revision"] = base.revision
    if spec.kind == "reft":
        raise HarnessError(f"vLLM cannot run ReFT interventions ({spec.location}): they edit hidden states at run time, "
                           "which vLLM has no hook for", hint="use eval.backend: hf for this model")
    if spec.kind == "adapter":
        adapter_config = json.loads((Path(spec.location) / "adapter_config.json").read_text())
        if adapter_config.get("peft_type") != "LORA" or adapter_config.get("use_dora"):
            raise HarnessError(f"vLLM serves LoRA adapters only; {spec.ref} is a {adapter_config.get('peft_type')}"
                               + (" (DoRA)" if adapter_config.get("use_dora") else "") + " adapter",
                               hint="merge it first (harness merge) and evaluate the merged folder, or use eval.backend: hf")
        args["lora_local_path"] = spec.location
        args["max_lora_rank"] = cfg.vllm.max_lora_rank or int(adapter_config.get("r", 16))
    return args


def check_backend(cfg: EvalConfig) -> None:
    if cfg.backend == "vllm":
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise HarnessError("eval.backend is vllm, but the vllm package is not installed",
                               hint="on a GPU machine: pip install vllm (matching your torch); or use eval.backend: hf")
