"""The cycle's review stages (see :mod:`harness.stage`):

* ``feedback``: the SFT candidate vs the incumbent, pushed to Label Studio as blind pairwise tasks;
  the scripted reviewers label them (``feedback.simulate``) or the cycle waits for people; labels are
  pulled, agreement computed, preference pairs exported (they train reward, DPO and online RL).
* ``review``: the final candidate on *held-out* prompts (never used for training), in projects of its
  own: against the incumbent (the gate's review evidence, ``<run>/review``) and, when a preference
  stage ran, against the SFT-only candidate (did alignment help, ``<run>/review/alignment``).

The review prompts are split once (:mod:`feedback.prompts`); the split is checked when the cycle
starts, before any model is loaded.

The local Label Studio starts in the background when the cycle starts (its first start takes a
minute, during SFT); the stages wait for it.
"""

from __future__ import annotations

import shutil
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


def _review_config(ctx: StageContext, final: bool, against_sft: bool = False) -> CycleConfig:
    fb = ctx.config.feedback
    values: dict[str, Any] = {"candidate": ctx.candidate if final else ctx.model("sft"), "incumbent": ctx.incumbent,
                              "prompt_set": "heldout" if final else "training"}
    if final:
        title = (fb.project or f"{ctx.config.run.id} review")[:35]  # Label Studio titles: <= 50 characters
        values["output_dir"] = ctx.layout.alignment_review if against_sft else ctx.layout.review
        values["project"] = f"{title} (final vs SFT)" if against_sft else f"{title} (final)"
        if against_sft:
            values["incumbent"] = ctx.model("sft")
    return ctx.with_(feedback=values)


def _check_prompts(ctx: StageContext) -> None:
    """At cycle start, before any model is loaded: the prompt split is sound and has both sides."""
    from feedback.onpolicy import check_budget
    from feedback.prompts import split_prompts

    split = split_prompts(ctx.config)
    fb = ctx.config.feedback
    if fb.on_policy:
        check_budget(fb.budget, len(split.side("training")), fb.samples)
    if "review" in ctx.plan:
        split.side("heldout")


def _prepare(ctx: StageContext) -> None:
    _check_prompts(ctx)
    _start_label_studio_early(ctx)


def _labeled(folder: Path, overlap: int) -> tuple[int, int]:
    """(tasks with at least ``overlap`` usable reviews, tasks)."""
    tasks = read_jsonl(folder / "tasks.jsonl")
    path = folder / "annotations.jsonl"
    counts = Counter(r["task_key"] for r in read_jsonl(path)) if path.is_file() else Counter()
    return sum(1 for t in tasks if counts[t["task_key"]] >= overlap), len(tasks)


def _collect(ctx: StageContext, cfg: CycleConfig, pushed: Any, final: bool) -> Any:
    """Once pushed tasks are labeled (scripted reviewers, or people within feedback.wait_minutes), pull
    them; otherwise pause the cycle with where to label and how to resume."""
    from feedback import pull, push, simulate

    fb = cfg.feedback
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
            return pulled
        if time.monotonic() >= deadline:
            raise Pause(f"waiting for reviewers: {done} of {total} tasks have {fb.overlap} reviews ({where}); "
                        f"when they are done: {resume}", "waiting", EXIT_WAITING)
        _log.info(f"{done} of {total} tasks fully reviewed; checking again in a minute")
        time.sleep(min(60.0, max(1.0, deadline - time.monotonic())))


def _round(ctx: StageContext, final: bool, against_sft: bool = False) -> StageResult:
    from feedback import preferences, push

    cfg = _review_config(ctx, final, against_sft)
    fb = cfg.feedback
    _label_studio(ctx)
    pushed: dict[str, Any] = {}

    def label(pool: Any = None, indices: list[int] | None = None) -> Any:
        pushed["last"] = push.run(cfg, indices=indices, pool=pool)
        return _collect(ctx, cfg, pushed["last"], final)

    if not final and fb.on_policy and fb.rounds > 1:
        from feedback.rounds import run_rounds

        pulled = run_rounds(cfg, label)  # labeling rounds under the budget (feedback.select)
    else:
        (push.feedback_dir(cfg) / "rounds.json").unlink(missing_ok=True)  # no rounds this time: none reported
        pulled = label()
    where = f"{pushed['last'].url}/projects/{pushed['last'].project_id}"
    exported = preferences.run(cfg)
    s = exported.summary
    win, unsafe = s["win_rate"], s["unsafe_rate"]
    if against_sft:
        return StageResult(summary=f"vs SFT-only win rate {num(win['estimate'], '.2f')} [{num(win['ci_low'], '.2f')}, "
                                   f"{num(win['ci_high'], '.2f')}] on {win['n']} held-out prompts",
                           metrics={"alignment_win_rate": win}, artifacts=[str(exported.summary_path)])
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


def _final_review(ctx: StageContext) -> StageResult:
    """The final candidate vs the incumbent (the gate's evidence) and, when a preference stage changed
    the SFT adapter, vs the SFT-only candidate (the alignment effect); both on held-out prompts."""
    compare_with_sft = ctx.candidate != ctx.model("sft")
    if not compare_with_sft:  # no preference stage this time: an earlier comparison must not be reported
        shutil.rmtree(ctx.layout.alignment_review, ignore_errors=True)
    second = ""
    if compare_with_sft:  # both projects exist before the cycle waits for people: one wait, not two
        from feedback import push

        _label_studio(ctx)
        pushed = push.run(_review_config(ctx, final=True, against_sft=True))
        second = f"{pushed.url}/projects/{pushed.project_id}"
    try:
        result = _round(ctx, final=True)
    except Pause as pause:
        if not second:
            raise
        raise Pause(f"{pause} (reviewers also label the comparison with the SFT-only candidate: {second})",
                    pause.status, pause.exit_code) from None
    if not compare_with_sft or result.status != "done":
        return result
    alignment = _round(ctx, final=True, against_sft=True)
    return result.model_copy(update={
        "summary": f"{result.summary}; {alignment.summary}",
        "metrics": {**result.metrics, **alignment.metrics},
        "artifacts": [*result.artifacts, *alignment.artifacts]})


FEEDBACK = Stage(name="feedback", title="human feedback on the SFT candidate", order=40, needs=("sft",),
                 section="feedback", run=lambda ctx, cfg: _round(ctx, final=False), inputs=_inputs,
                 prepare=_prepare)
REVIEW = Stage(name="review", title="review of the final candidate on held-out prompts", order=90,
               needs=("sft", "dpo", "online", "feedback"), section="feedback",
               run=lambda ctx, cfg: _final_review(ctx), inputs=_inputs, prepare=_prepare,
               enabled=lambda config: config.cycle.review_final)
