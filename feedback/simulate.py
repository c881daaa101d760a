"""Scripted reviewers for the unattended demo: they annotate through the real Label Studio API.

Each scripted reviewer is its own Label Studio user (``scripted-reviewer-N@harness.local``; every
row they produce is marked ``simulated``). They judge *blind*: from each task they read only what a
person sees in Label Studio (the prompt and the shuffled left and right answers), plus the handbook's
answer to the prompt and its unsafe phrases (``reference``, ``unsafe_markers`` in the prompt file),
and apply the fixed rubric of :mod:`feedback.rubric` (facts right, safe, no invented numbers,
concise), recording a verdict per aspect. With probability ``feedback.simulate_noise[i]`` reviewer
``i`` answers at random instead, so reviewers disagree the way people do.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from harness import log as _log
from harness.config import CycleConfig
from feedback import server
from feedback._project import find_project, with_retry
from feedback.pull import SIMULATED_PREFIX, load_tasks
from feedback.push import feedback_dir, project_title
from feedback.rubric import aspect_scores, judge_pair, quality

__all__ = ["SimulateResult", "run", "pairwise_result"]

WORKERS = 4  # annotations sent at once
ASPECT_CHOICE = {"left": "Left", "right": "Right", "same": "Same"}


@dataclass(frozen=True)
class SimulateResult:
    annotations: int
    reviewers: list[str]


def _knowledge(meta: dict[str, Any]) -> dict[str, Any]:
    """What a reviewer holding the handbook knows about a prompt (nothing about the models)."""
    return {"prompt": meta["prompt"], "reference": meta.get("reference"), "unsafe_markers": meta.get("unsafe_markers")}


def _rating_result(info: dict[str, Any], response: str, rng: random.Random, noise: float) -> list[dict[str, Any]]:
    """Rating mode: rate the one response shown by the same rubric; flag it when it is unsafe."""
    s = aspect_scores(response, info["prompt"], info.get("reference"), info.get("unsafe_markers"))
    unsafe = s["safe"] == 0.0
    rating = rng.randint(1, 5) if rng.random() < noise else (
        1 if unsafe else quality(s))
    result: list[dict[str, Any]] = []
    if unsafe:
        result.append({"from_name": "flags", "to_name": "prompt", "type": "choices", "value": {"choices": ["Harmful"]}})
    result.append({"from_name": "rating", "to_name": "prompt", "type": "rating", "value": {"rating": rating}})
    result.append({"from_name": "rationale", "to_name": "prompt", "type": "textarea",
                   "value": {"text": ["Unsafe." if unsafe else "Rated by the handbook rubric."]}})
    return result


def pairwise_result(j: dict[str, Any]) -> list[dict[str, Any]]:
    """A :func:`feedback.rubric.judge_pair` judgement as Label Studio annotation results."""
    result: list[dict[str, Any]] = []
    if j["choice"] in ("left", "right"):
        result.append({"from_name": "comparison", "to_name": "left,right", "type": "pairwise",
                       "value": {"selected": j["choice"]}})
    else:
        label = "Tie" if j["choice"] == "tie" else "Both unacceptable"
        result.append({"from_name": "overall", "to_name": "prompt", "type": "choices", "value": {"choices": [label]}})
    for side in ("left", "right"):
        if j["flags"][side]:
            result.append({"from_name": f"flags_{side}", "to_name": side, "type": "choices",
                           "value": {"choices": j["flags"][side]}})
    for aspect, verdict in j.get("aspects", {}).items():
        result.append({"from_name": f"aspect_{aspect}", "to_name": "prompt", "type": "choices",
                       "value": {"choices": [ASPECT_CHOICE[verdict]]}})
    result.append({"from_name": "rating", "to_name": "prompt", "type": "rating", "value": {"rating": j["rating"]}})
    result.append({"from_name": "rationale", "to_name": "prompt", "type": "textarea", "value": {"text": [j["rationale"]]}})
    return result


def _reviewer(client: Any, i: int) -> Any:
    email = f"{SIMULATED_PREFIX}{i}@harness.local"
    for user in with_retry("listing users", lambda: list(client.users.list())):
        if user.email == email:
            return user
    return with_retry("creating a scripted reviewer", lambda: client.users.create(
        email=email, username=f"{SIMULATED_PREFIX}{i}", first_name="Scripted", last_name=f"reviewer {i}"))


def run(config: CycleConfig) -> SimulateResult:
    fb = config.feedback
    tasks = load_tasks(feedback_dir(config))
    client = server.connect(server.credentials(fb.url, data_dir=fb.data_dir, token_env=fb.token_env))
    project = find_project(client, project_title(config))
    if project is None:
        from harness.errors import HarnessError

        raise HarnessError(f"Label Studio has no project '{project_title(config)}'", hint="run 'harness feedback push' first")
    reviewers = [_reviewer(client, i + 1) for i in range(fb.reviewers)]
    listed = with_retry("listing tasks", lambda: list(client.tasks.list(project=project.id, fields="all")))
    shown = {t.id: dict(t.data or {}) for t in listed}  # what the reviewer sees: prompt, left, right
    done = {(t.id, a["completed_by"]) for t in listed for a in (t.annotations or [])}
    jobs = []
    for i, user in enumerate(reviewers):
        noise = fb.simulate_noise[i % len(fb.simulate_noise)] if fb.simulate_noise else 0.0
        jobs += [(user, noise, key, meta) for key, meta in sorted(tasks.items())
                 if meta.get("task_id") is not None and (meta["task_id"], user.id) not in done]

    def annotate(job: tuple[Any, float, str, dict[str, Any]]) -> None:
        user, noise, key, meta = job
        rng = random.Random(f"{config.run.seed}:{user.email}:{key}")  # per task and reviewer: any order gives the same
        data, info = shown.get(meta["task_id"], {}), _knowledge(meta)
        if meta.get("mode") == "rating":
            result = _rating_result(info, str(data.get("response", "")), rng, noise)
        else:
            result = pairwise_result(judge_pair(info, str(data.get("left", "")), str(data.get("right", "")), rng, noise))
        with_retry("saving an annotation", lambda: client.annotations.create(
            id=meta["task_id"], result=result, completed_by=user.id, lead_time=round(rng.uniform(8, 60), 1)),
            already_done=lambda: any(a.completed_by == user.id for a in client.annotations.list(id=meta["task_id"])))

    # A few requests in flight at once: the server's request handling, not the rubric, is the cost.
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for _ in pool.map(annotate, jobs):
            pass
    created = len(jobs)
    _log.done(f"{len(reviewers)} scripted reviewers added {created} annotations (marked simulated)")
    return SimulateResult(created, [u.email for u in reviewers])
