"""Push candidate-vs-incumbent responses to Label Studio for blind pairwise review.

``run(config) -> PushResult``: reads the review prompts, generates both models' responses (greedy,
batched, cached per model fingerprint in ``<run>/responses/`` so a repeated push regenerates nothing), shuffles left/right
per task with the mapping kept only in ``<run>/feedback/tasks.jsonl``, and imports tasks that are not
in the project yet (task key = hash of prompt and both responses): pushing twice adds nothing.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import atomic_write_jsonl, iter_jsonl, read_jsonl, sha256_bytes, update_manifest, utc_now
from harness.config import CycleConfig
from harness.errors import HarnessError
from harness.generate import sample_responses
from harness.models import fingerprint, inference_dtype, resolve
from feedback import server
from feedback.onpolicy import on_policy_pairs, within_budget
from feedback._project import get_or_create_project, guidelines, project_tasks, template, with_retry

__all__ = ["PushResult", "Pool", "run", "candidate_pool", "read_prompts", "task_key", "project_title", "models_under_review", "feedback_dir"]


@dataclass(frozen=True)
class PushResult:
    project_id: int
    url: str
    created: int
    already_there: int
    tasks_path: Path


def read_prompts(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    if path is None:
        raise HarnessError("no review prompts: feedback.prompts is not set",
                           hint="set feedback.prompts to a JSONL file of prompts for the reviewers")
    if not Path(path).is_file():
        raise HarnessError(f"review prompt file {path} does not exist", hint="set feedback.prompts to a JSONL file")
    rows = []
    for where, row in iter_jsonl(path, hint='each line: {"prompt": "...", "id": "...", "reference": "..."}'):
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise HarnessError("'prompt' is missing or empty", where=where)
        row.setdefault("id", f"line-{where.rsplit(':', 1)[1]}")
        rows.append(row)
        if limit and len(rows) >= limit:
            break
    if not rows:
        raise HarnessError(f"{path} holds no review prompts")
    return rows


def task_key(prompt: str, response_a: str, response_b: str) -> str:
    ordered = sorted([response_a, response_b])  # the same pair is the same task, whichever side it is on
    return sha256_bytes(json.dumps([prompt, *ordered]).encode())[:20]


def project_title(config: CycleConfig) -> str:
    return config.feedback.project or f"{config.run.id[:43]} review"  # Label Studio allows 50 characters


def feedback_dir(config: CycleConfig) -> Path:
    """Where this review round's tasks, responses and labels live: feedback.output_dir or <run>/feedback."""
    return Path(config.feedback.output_dir or config.layout().feedback)


def models_under_review(config: CycleConfig) -> tuple[str, str]:
    fb = config.feedback
    candidate = fb.candidate or str(config.layout().adapter("sft"))
    if fb.incumbent is None:
        from harness.gate import default_incumbent

        return candidate, default_incumbent(config)
    return candidate, fb.incumbent


def _generated(config: CycleConfig, ref: str, prompts: list[dict], samples: int = 1) -> tuple[list[list[str]], str]:
    """``ref``'s answers to ``prompts``: one greedy answer (``samples`` 1), or ``samples`` drawn at
    ``feedback.temperature``; cached per model fingerprint for the whole run (review rounds share them)."""
    fb = config.feedback
    spec = resolve(ref, trust_remote_code=config.model.trust_remote_code)
    fp = fingerprint(spec)
    temperature = fb.temperature if samples > 1 else 0.0
    dtype = inference_dtype(fb.dtype)
    settings = {"samples": samples, "temperature": temperature, "max_new_tokens": fb.max_new_tokens,
                "batch_size": fb.batch_size, "batches": "by_length", "dtype": dtype, **({"seed": config.run.seed} if samples > 1 else {})}
    cache = config.layout().responses / (f"{fp}.samples.jsonl" if samples > 1 else f"{fp}.jsonl")
    known: dict[str, list[str]] = {}
    if cache.is_file():
        known = {row["prompt"]: row["responses"] for row in read_jsonl(cache) if row.get("settings") == settings}
    todo = [p["prompt"] for p in prompts if p["prompt"] not in known]
    if todo:
        _log.info(f"sampling {samples} answers to each of {len(todo)} prompts with {spec.describe()} "
                  f"(temperature {temperature:g})" if samples > 1 else
                  f"generating {len(todo)} responses with {spec.describe()}")
        drawn = sample_responses(spec, todo, samples=samples, temperature=temperature, seed=config.run.seed,
                                 max_new_tokens=fb.max_new_tokens, batch_size=fb.batch_size, dtype=dtype,
                                 description=f"{'sampling' if samples > 1 else 'generating'} ({ref})")
        known.update(zip(todo, drawn))
        atomic_write_jsonl(cache, [{"prompt": k, "responses": v, "settings": settings} for k, v in known.items()])
    return [known[p["prompt"]] for p in prompts], fp


def _responses(config: CycleConfig, ref: str, prompts: list[dict]) -> tuple[list[str], str]:
    """One greedy answer per prompt (see :func:`_generated`)."""
    answers, fp = _generated(config, ref, prompts)
    return [a[0] for a in answers], fp


def _prompts(config: CycleConfig) -> list[dict[str, Any]]:
    fb = config.feedback
    from feedback.prompts import split_prompts, write_split

    if fb.prompt_set == "all":
        return read_prompts(fb.prompts, fb.limit)
    split = split_prompts(config)
    write_split(config, split)
    return split.side(fb.prompt_set)


@dataclass(frozen=True)
class Pool:
    """Every on-policy review pair of the training prompts (no budget applied) and where it came from."""

    prompts: list[dict[str, Any]]
    pairs: list[Any]  # OnPolicyPair: (prompt row, answer a, answer b, kind)
    counts: dict[str, int]
    candidate_fp: str
    incumbent_fp: str


def candidate_pool(config: CycleConfig) -> Pool:
    """The on-policy pairs reviewers could be asked about; answers are generated once and cached."""
    fb = config.feedback
    prompts = _prompts(config)
    candidate, incumbent = models_under_review(config)
    inc_out, inc_fp = _responses(config, incumbent, prompts)
    drawn, cand_fp = _generated(config, candidate, prompts, samples=fb.samples)
    pairs, counts = on_policy_pairs(prompts, drawn, inc_out, budget=None, seed=config.run.seed)
    seen: set[str] = set()
    unique = []
    for pair in pairs:  # a sample equal to the incumbent's answer would make the same task twice
        key = task_key(pair[0]["prompt"], pair[1], pair[2])
        if key not in seen:
            seen.add(key)
            unique.append(pair)
    counts = {**counts, "pairs_available": len(unique)}
    return Pool(prompts, unique, counts, cand_fp, inc_fp)


def run(config: CycleConfig, *, indices: list[int] | None = None, pool: Pool | None = None) -> PushResult:
    """Push this round's review tasks. ``indices``: with on-policy pairs, exactly these pairs of
    :func:`candidate_pool` (active labeling chooses them) instead of a random choice within the budget;
    ``pool``: that pool when the caller has built it already."""
    fb = config.feedback
    out_dir = feedback_dir(config)
    creds = server.credentials(fb.url, data_dir=fb.data_dir, token_env=fb.token_env)
    client = server.connect(creds)
    candidate, incumbent = models_under_review(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    on_policy = fb.on_policy and fb.prompt_set == "training"
    sampled: dict[str, int] = {}
    if on_policy:  # the policy's own sampled answers, paired with each other and with the incumbent's
        pool = pool or candidate_pool(config)
        prompts, cand_fp, inc_fp, sampled = pool.prompts, pool.candidate_fp, pool.incumbent_fp, dict(pool.counts)
        pairs = ([pool.pairs[i] for i in indices] if indices is not None
                 else within_budget(pool.pairs, fb.budget, config.run.seed))
        sampled["pairs_sent"] = len(pairs)
        if fb.budget is not None and sampled["pairs_available"] < fb.budget:
            _log.warn(f"only {sampled['pairs_available']} distinct review pairs for a budget of {fb.budget} "
                      f"({sampled['duplicate_or_empty_samples']} sampled answers were duplicates or empty)")
    else:
        prompts = _prompts(config)
        inc_out, inc_fp = _responses(config, incumbent, prompts)
        cand_out, cand_fp = _responses(config, candidate, prompts)
        pairs = [(p, c, i, "candidate_vs_incumbent") for p, c, i in zip(prompts, cand_out, inc_out)]

    project = get_or_create_project(client, project_title(config), template(fb.template), fb.overlap)
    existing = project_tasks(client, project.id)
    rows, new_tasks, queued = [], [], set()
    text = guidelines()
    for p, cand, inc, kind in pairs:
        other = ({"ref": candidate, "fingerprint": cand_fp} if kind == "sample_vs_sample"
                 else {"ref": incumbent, "fingerprint": inc_fp})
        if fb.template == "rating":  # one blind task per response
            for who, response in (("candidate", cand), ("incumbent", inc)):
                key = sha256_bytes(json.dumps(["rating", p["prompt"], response, who]).encode())[:20]
                rows.append({"task_key": key, "mode": "rating", "rated": who, "prompt_id": p["id"], "prompt": p["prompt"],
                             "category": p.get("category"), "reference": p.get("reference"),
                             "unsafe_markers": p.get("unsafe_markers", []),
                             "candidate": {"ref": candidate, "fingerprint": cand_fp, "response": cand},
                             "incumbent": {"ref": incumbent, "fingerprint": inc_fp, "response": inc}})
                if key not in existing and key not in queued:
                    queued.add(key)
                    new_tasks.append({"prompt": p["prompt"], "response": response, "guidelines": text, "task_key": key})
            continue
        key = task_key(p["prompt"], cand, inc)
        if key in queued:  # the same prompt twice: one task
            continue
        if key in existing:
            # The server's task keeps the sides it was imported with: read them back, never recompute.
            candidate_left = existing[key][1].get("left") == cand
        else:
            candidate_left = random.Random(f"{config.run.seed}:{key}").random() < 0.5
        left, right = (cand, inc) if candidate_left else (inc, cand)
        rows.append({"task_key": key, "prompt_id": p["id"], "prompt": p["prompt"], "category": p.get("category"),
                     "reference": p.get("reference"), "unsafe_markers": p.get("unsafe_markers", []),
                     "candidate_side": "left" if candidate_left else "right", "kind": kind,
                     "candidate": {"ref": candidate, "fingerprint": cand_fp, "response": cand},
                     "incumbent": {**other, "response": inc}})
        queued.add(key)
        if key not in existing:
            # What reviewers see: no model names, no side mapping.
            new_tasks.append({"prompt": p["prompt"], "left": left, "right": right, "guidelines": text, "task_key": key})
    if fb.template == "rating":  # interleave so reviewers cannot tell the models apart by position
        new_tasks.sort(key=lambda t: t["task_key"])
    if new_tasks:
        wanted = {t["task_key"] for t in new_tasks}
        with_retry("importing tasks", lambda: client.projects.import_tasks(id=project.id, request=new_tasks),
                   already_done=lambda: wanted <= set(project_tasks(client, project.id)))
    ids = project_tasks(client, project.id)
    for row in rows:
        row["task_id"] = ids[row["task_key"]][0] if row["task_key"] in ids else None
    tasks_path = out_dir / "tasks.jsonl"
    atomic_write_jsonl(tasks_path, rows)
    update_manifest(config.run_dir(), f"{out_dir.name}_push", {
        "project": project.title, "project_id": project.id, "url": creds.url, "prompts": str(fb.prompts),
        "prompt_set": fb.prompt_set, "prompt_ids": [p["id"] for p in prompts],
        "candidate": {"ref": candidate, "fingerprint": cand_fp}, "incumbent": {"ref": incumbent, "fingerprint": inc_fp},
        "tasks": len(rows), "created": len(new_tasks), "pushed": utc_now(),
        **({"on_policy": {**sampled, "samples_per_prompt": fb.samples, "temperature": fb.temperature,
                          "budget": fb.budget}} if on_policy else {}),
    })
    _log.done(f"project '{project.title}' (id {project.id}): {len(new_tasks)} new tasks, "
              f"{len(rows) - len(new_tasks)} already there; open {creds.url}/projects/{project.id}")
    return PushResult(project.id, creds.url, len(new_tasks), len(rows) - len(new_tasks), tasks_path)
