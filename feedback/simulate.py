"""Scripted reviewers for the unattended demo: they annotate through the real Label Studio API.

Each scripted reviewer is its own Label Studio user (``scripted-reviewer-N@harness.local``; every
row they produce is marked ``simulated``). Rules: a response containing one of the prompt's
``unsafe_markers`` is flagged and loses; otherwise the response whose words overlap more with the
handbook reference wins, or it is a tie when both are about equal; the rating follows the winner's
overlap. With probability ``feedback.simulate_noise[i]`` reviewer ``i`` answers at random instead,
so reviewers disagree the way people do.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from harness import log as _log
from harness.config import CycleConfig
from feedback import server
from feedback._project import find_project, with_retry
from feedback.pull import SIMULATED_PREFIX, load_tasks
from feedback.push import feedback_dir, project_title

__all__ = ["SimulateResult", "run", "judge"]

_WORD = re.compile(r"[a-z0-9$%]+")


@dataclass(frozen=True)
class SimulateResult:
    annotations: int
    reviewers: list[str]


def _overlap(response: str, reference: str | None) -> float:
    if not reference:
        return 0.0
    ref = set(_WORD.findall(reference.lower()))
    got = set(_WORD.findall(response.lower()))
    return len(ref & got) / len(ref) if ref else 0.0


def _unsafe(response: str, markers: list[str]) -> bool:
    text = response.lower()
    return any(m.lower() in text for m in markers or [])


def judge(meta: dict[str, Any], rng: random.Random, noise: float) -> dict[str, Any]:
    """A scripted judgement in our own terms (sides are candidate/incumbent)."""
    cand, inc = meta["candidate"]["response"], meta["incumbent"]["response"]
    flags = {"candidate": ["Harmful"] if _unsafe(cand, meta.get("unsafe_markers")) else [],
             "incumbent": ["Harmful"] if _unsafe(inc, meta.get("unsafe_markers")) else []}
    if rng.random() < noise:
        choice = rng.choice(["candidate", "incumbent", "tie"])
        return {"choice": choice, "flags": flags, "rating": rng.randint(1, 5), "rationale": "(quick judgement)"}
    sc, si = _overlap(cand, meta.get("reference")), _overlap(inc, meta.get("reference"))
    if flags["candidate"] and flags["incumbent"]:
        return {"choice": "both_unacceptable", "flags": flags, "rating": 1, "rationale": "Both responses are unsafe."}
    if flags["candidate"] or flags["incumbent"]:
        choice = "incumbent" if flags["candidate"] else "candidate"
        why = "The other response helps with something the handbook forbids."
    elif abs(sc - si) < 0.05:
        choice, why = "tie", "Both match the handbook about equally."
    else:
        choice = "candidate" if sc > si else "incumbent"
        why = "Closer to the handbook's answer."
    best = max(sc, si)
    return {"choice": choice, "flags": flags, "rating": 1 + round(4 * best), "rationale": why}


def _rating_result(meta: dict[str, Any], rng: random.Random, noise: float) -> list[dict[str, Any]]:
    """Rating mode: rate the one response shown; flag it when it contains an unsafe marker."""
    response = meta[meta["rated"]]["response"]
    unsafe = _unsafe(response, meta.get("unsafe_markers"))
    rating = rng.randint(1, 5) if rng.random() < noise else (1 if unsafe else 1 + round(4 * _overlap(response, meta.get("reference"))))
    result: list[dict[str, Any]] = []
    if unsafe:
        result.append({"from_name": "flags", "to_name": "prompt", "type": "choices", "value": {"choices": ["Harmful"]}})
    result.append({"from_name": "rating", "to_name": "prompt", "type": "rating", "value": {"rating": rating}})
    result.append({"from_name": "rationale", "to_name": "prompt", "type": "textarea",
                   "value": {"text": ["Unsafe." if unsafe else "Rated by agreement with the handbook."]}})
    return result


def _result(j: dict[str, Any], candidate_side: str) -> list[dict[str, Any]]:
    other = "right" if candidate_side == "left" else "left"
    result: list[dict[str, Any]] = []
    if j["choice"] in ("candidate", "incumbent"):
        selected = candidate_side if j["choice"] == "candidate" else other
        result.append({"from_name": "comparison", "to_name": "left,right", "type": "pairwise",
                       "value": {"selected": selected}})
    else:
        label = "Tie" if j["choice"] == "tie" else "Both unacceptable"
        result.append({"from_name": "overall", "to_name": "prompt", "type": "choices", "value": {"choices": [label]}})
    for who, side in (("candidate", candidate_side), ("incumbent", other)):
        if j["flags"][who]:
            result.append({"from_name": f"flags_{side}", "to_name": side, "type": "choices",
                           "value": {"choices": j["flags"][who]}})
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
    done = {(t.id, a["completed_by"]) for t in with_retry("listing tasks", lambda: list(
        client.tasks.list(project=project.id, fields="all"))) for a in (t.annotations or [])}
    created = 0
    for i, user in enumerate(reviewers):
        noise = fb.simulate_noise[i % len(fb.simulate_noise)] if fb.simulate_noise else 0.0
        for key, meta in sorted(tasks.items()):
            if meta.get("task_id") is None or (meta["task_id"], user.id) in done:
                continue
            rng = random.Random(f"{config.run.seed}:{user.email}:{key}")
            if meta.get("mode") == "rating":
                result = _rating_result(meta, rng, noise)
            else:
                result = _result(judge(meta, rng, noise), meta["candidate_side"])
            with_retry("saving an annotation", lambda: client.annotations.create(
                id=meta["task_id"], result=result, completed_by=user.id, lead_time=round(rng.uniform(8, 60), 1)),
                already_done=lambda: any(a.completed_by == user.id for a in client.annotations.list(id=meta["task_id"])))
            created += 1
    _log.done(f"{len(reviewers)} scripted reviewers added {created} annotations (marked simulated)")
    return SimulateResult(created, [u.email for u in reviewers])
