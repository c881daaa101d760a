"""The cycle's review stages (see :mod:`harness.stage`):

* ``feedback``: the SFT candidate vs the incumbent, pushed to Label Studio as blind pairwise tasks;
  the scripted reviewers label them (``feedback.simulate``) or the cycle waits for people; labels are
  pulled, agreement computed, preference pairs exported (they train reward, DPO and online RL).
* ``review``: the same for the final candidate, in a project of its own: the gate's review evidence.

The local Label Studio starts in the background when the cycle starts (its first start takes a
minute, during SFT); the stages wait for it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import read_jsonl, sha256_file
from harness.config import CycleConfig
from harness.stage import EXIT_WAITING, Pause, Stage, StageContext, StageResult, num

__all__ = ["FEEDBACK", "REVIEW"]

_SERVER = "feedback.label_studio"  # the key of the background start in ctx.shared


def _start_label_studio_early(ctx: StageContext) -> None:
    """Start the local Label Studio in the background while training runs; once per cycle."""
    from feedback import server

    fb = ctx.config.feedback
    if _SERVER in ctx.shared or fb.url is not None:
        return
    info = server.status(fb.data_dir)
    if info is not None and info.healthy:
        return
    started: dict[str, Any] = {"error": None}

    def start() -> None:
        try:
            server.serve(data_dir=fb.data_dir, port=fb.port, venv=fb.venv)
        except BaseException as exc:  # reported by the review stage that needs the server
            started["error"] = exc

    _log.info("starting the local Label Studio in the background (the review stages need it)")
    started["thread"] = threading.Thread(target=start, name="label-studio-start", daemon=True)
    started["thread"].start()
    ctx.shared[_SERVER] = started


def _label_studio(ctx: StageContext) -> None:
    """The local Label Studio, up (started now if it is not)."""
    from feedback import server

    fb = ctx.config.feedback
    if fb.url is not None:
        return
    started = ctx.shared.get(_SERVER)
    if started is not None and started.get("thread") is not None:
        started["thread"].join()
        started["thread"] = None
        if started["error"] is not None:
            error, started["error"] = started["error"], None
            raise error
    server.serve(data_dir=fb.data_dir, port=fb.port, venv=fb.venv)  # returns the running one


def _review_config(ctx: StageContext, final: bool) -> CycleConfig:
    fb = ctx.config.feedback
    values: dict[str, Any] = {"candidate": ctx.candidate if final else ctx.model("sft"), "incumbent": ctx.incumbent}
    if final:
        values["output_dir"] = ctx.layout.review
        values["project"] = f"{(fb.project or f'{ctx.config.run.id} review')[:42]} (final)"  # LS titles: <= 50
    return ctx.with_(feedback=values)


def _labeled(folder: Path, overlap: int) -> tuple[int, int]:
    """(tasks with at least ``overlap`` usable reviews, tasks)."""
    tasks = read_jsonl(folder / "tasks.jsonl")
    path = folder / "annotations.jsonl"
    counts = Counter(r["task_key"] for r in read_jsonl(path)) if path.is_file() else Counter()
    return sum(1 for t in tasks if counts[t["task_key"]] >= overlap), len(tasks)


def _round(ctx: StageContext, final: bool) -> StageResult:
    from feedback import preferences, pull, push, simulate

    cfg = _review_config(ctx, final)
    fb = cfg.feedback
    _label_studio(ctx)
    pushed = push.run(cfg)
    where = f"{pushed.url}/projects/{pushed.project_id}"
    resume = f"harness cycle --resume {ctx.config.run.id}"
    if ctx.until == ("review" if final else "feedback") and not fb.simulate:
        raise Pause(f"{pushed.created + pushed.already_there} tasks are in Label Studio ({where}); when the reviewers "
                    f"are done: {resume}", "paused", 0)
    if fb.simulate:
        simulate.run(cfg)
    deadline = time.monotonic() + fb.wait_minutes * 60
    while True:
        pulled = pull.run(cfg)
        done, total = _labeled(push.feedback_dir(cfg), fb.overlap)
        if done >= total:
            break
        if time.monotonic() >= deadline:
            raise Pause(f"waiting for reviewers: {done} of {total} tasks have {fb.overlap} reviews ({where}); "
                        f"when they are done: {resume}", "waiting", EXIT_WAITING)
        _log.info(f"{done} of {total} tasks fully reviewed; checking again in a minute")
        time.sleep(min(60.0, max(1.0, deadline - time.monotonic())))
    exported = preferences.run(cfg)
    s = exported.summary
    win, unsafe = s["win_rate"], s["unsafe_rate"]
    return StageResult(
        summary=f"{pulled.annotations} reviews{' (simulated)' if s.get('simulated') else ''}, {exported.pairs} preference "
                f"pairs; win rate {num(win['estimate'], '.2f')} [{num(win['ci_low'], '.2f')}, {num(win['ci_high'], '.2f')}], "
                f"unsafe rate {num(unsafe['estimate'], '.2f')}",
        metrics={"win_rate": win, "unsafe_rate": unsafe, "pairs": exported.pairs},
        artifacts=[str(exported.preferences_path)], outputs={"url": where})


def _inputs(ctx: StageContext) -> dict[str, Any]:
    prompts = ctx.config.feedback.prompts
    return {"incumbent": ctx.incumbent,
            **({"prompts": sha256_file(prompts)} if prompts and Path(prompts).is_file() else {})}


FEEDBACK = Stage(name="feedback", title="human feedback on the SFT candidate", order=40, needs=("sft",),
                 section="feedback", run=lambda ctx, cfg: _round(ctx, final=False), inputs=_inputs,
                 prepare=_start_label_studio_early)
REVIEW = Stage(name="review", title="review of the final candidate", order=90,
               needs=("sft", "dpo", "online", "feedback"), section="feedback",
               run=lambda ctx, cfg: _round(ctx, final=True), inputs=_inputs, prepare=_start_label_studio_early,
               enabled=lambda config: config.cycle.review_final)
