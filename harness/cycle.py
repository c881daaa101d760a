"""``harness cycle``: the whole tune -> evaluate -> align -> gate loop from one config, resumable.

Stages, in order (each calls one stage module's ``run``):

==========  =========================================================================================
data        prepare the training data                                          ``harness.data``
sft         supervised fine-tuning: the first candidate                        ``rlhf.sft``
eval        score base, incumbent and SFT candidate on the suites              ``harness.evaluate``
feedback    SFT candidate vs incumbent to Label Studio; wait for the reviewers (or scripted reviewers
            with ``feedback.simulate``); pull; agreement and preference pairs  ``feedback.*``
reward      reward model on the preference pairs (when online RL runs)        ``rlhf.reward``
dpo         DPO continuing the SFT adapter                (``cycle.align``)    ``rlhf.dpo``
online      GRPO/RLOO continuing DPO's adapter, or SFT's  (``cycle.align``)    ``rlhf.online``
final_eval  score the final candidate                                          ``harness.evaluate``
review      reviewers compare the final candidate with the incumbent (``cycle.review_final``)
gate        decide under the written policy                                    ``harness.gate``
promote     register the passing candidate and make it the champion            ``harness.registry``
report      the audit report                                                   ``reports.audit``
==========  =========================================================================================

The incumbent is ``gate.incumbent``, else the registry's champion, else ``model.base``; it is fixed
for the run when first chosen (the cycle's own promotion does not change what it was compared with;
a later candidate of the same run, gated against that incumbent, is therefore not promoted over the
champion: the promote stage says so and how to gate it against the champion).

Resuming: ``<run>/cycle.json`` records, per stage, a key (hash of the stage's config sections, its
input files and the keys of the stages it depends on), its status, timing and a one-line summary.
Running the cycle again skips every complete stage whose key is unchanged and runs the rest: an edit
of ``dpo`` re-runs dpo and everything downstream of it, never SFT or the first evaluation. A stage
killed midway is started again (SFT continues from its last checkpoint). ``from_stage`` forces that
stage and all after it; ``until`` stops after a stage (``until="feedback"`` stops once the tasks are
pushed, for real reviewers; ``resume`` continues later).
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness import _log
from harness.artifacts import atomic_write_json, read_json, sha256_file, stable_hash, utc_now
from harness.config import CycleConfig, load_config
from harness.errors import HarnessError

__all__ = ["STAGES", "CycleResult", "run", "resume_config", "state_path", "EXIT_REJECTED", "EXIT_WAITING"]

STAGES = ("data", "sft", "eval", "feedback", "reward", "dpo", "online", "final_eval", "review", "gate", "promote",
          "report")
TITLES = {
    "data": "prepare data", "sft": "supervised fine-tuning", "eval": "evaluate base, incumbent, SFT candidate",
    "feedback": "human feedback on the SFT candidate", "reward": "reward model", "dpo": "DPO", "online": "online RL",
    "final_eval": "evaluate the final candidate", "review": "review of the final candidate", "gate": "gate",
    "promote": "promotion", "report": "audit report",
}
# Config sections each stage reads (besides run.seed and model, which every stage reads).
SECTIONS = {
    "data": ("data",), "sft": ("sft",), "eval": ("eval",), "feedback": ("feedback",), "reward": ("reward",),
    "dpo": ("dpo",), "online": ("online",), "final_eval": ("eval",), "review": ("feedback",),
    "gate": ("gate", "eval"), "promote": ("registry",), "report": (),
}
# Sections a stage never needs: no "using defaults" note for them.
_NOT_A_STAGE = ("run", "model", "merge", "cycle")
EXIT_REJECTED = 1  # the gate did not pass the candidate (like 'harness gate')
EXIT_WAITING = 3   # paused: reviewers have not finished labeling


class _Pause(Exception):
    """A stage stops the cycle without failing (waiting for reviewers, or --until)."""

    def __init__(self, message: str, status: str, exit_code: int):
        super().__init__(message)
        self.status, self.exit_code = status, exit_code


@dataclass
class _Done:
    summary: str
    outputs: dict[str, Any] = field(default_factory=dict)
    status: str = "done"
    warnings: list[str] = field(default_factory=list)  # something optional was skipped; the stage still finished


@dataclass(frozen=True)
class CycleResult:
    run_dir: Path
    stages: list[dict[str, Any]]  # name, status, seconds, summary (in order)
    outcome: str
    exit_code: int
    report: Path | None = None
    decision_id: str | None = None
    warnings: list[str] = field(default_factory=list)  # "stage: what was skipped and why"


def state_path(run_dir: Path) -> Path:
    return Path(run_dir) / "cycle.json"


def resume_config(run_id: str, root: Path = Path("runs"), overrides: list[str] | tuple[str, ...] = ()) -> tuple[CycleConfig, Path | None, list[str]]:
    """The config a run was started with (its file, re-read, plus the recorded overrides), for ``--resume``."""
    path = state_path(root / run_id)
    if not path.is_file():
        raise HarnessError(f"no cycle run '{run_id}' under {root}/ (no {path})",
                           hint="pass the run id printed by 'harness cycle', and run from the same folder (or give --config)")
    state = read_json(path)
    config_file = Path(state["config_file"]) if state.get("config_file") else None
    if config_file is not None and not config_file.is_file():
        raise HarnessError(f"run '{run_id}' was started from {config_file}, which no longer exists",
                           hint="pass --config with the cycle's YAML file")
    recorded = [o for o in state.get("overrides", []) if not o.startswith("run.id=")]
    merged = [*recorded, *overrides, f"run.id={run_id}", f"run.root={root}"]
    return load_config(config_file, merged), config_file, [*recorded, *overrides]


class _Cycle:
    def __init__(self, config: CycleConfig, *, config_file: Path | None, overrides: list[str],
                 from_stage: str | None, until: str | None):
        self.config = config
        self.run_dir = config.run_dir()
        self.from_stage, self.until = from_stage, until
        self.forced: set[str] = set()  # --from: this stage and the later ones run, and re-score evaluations
        self.current: str | None = None  # the stage running now
        self.path = state_path(self.run_dir)
        self.state: dict[str, Any] = read_json(self.path) if self.path.is_file() else {
            "version": 1, "kind": "cycle_state", "run_id": config.run.id, "created": utc_now(), "stages": {}}
        self.state["config_file"] = str(config_file.resolve()) if config_file else None
        self.state["overrides"] = list(overrides)
        align = config.cycle.align
        self.plan = [s for s in STAGES
                     if not (s in ("dpo", "online") and s not in align)
                     and not (s == "reward" and "online" not in align)
                     and not (s == "review" and not config.cycle.review_final)]
        self.incumbent = self._incumbent()

    # ------------------------------------------------------------------ bookkeeping

    def save(self) -> None:
        self.state["updated"] = utc_now()
        atomic_write_json(self.path, self.state)

    def _incumbent(self) -> str:
        if self.config.gate.incumbent:
            return self.config.gate.incumbent
        recorded = self.state.get("incumbent")
        if recorded:
            return recorded
        from harness.gate import default_incumbent

        ref = default_incumbent(self.config)
        self.state["incumbent"] = ref
        return ref

    def model(self, stage: str) -> str:
        """The model a training stage produced (its adapter folder; a full model for sft.method full/freeze)."""
        recorded = self.state["stages"].get(stage, {}).get("outputs", {}).get("model")
        return str(Path(recorded or self.run_dir / stage / "adapter").resolve())

    @property
    def final_stage(self) -> str:
        return next((s for s in ("online", "dpo") if s in self.plan), "sft")

    @property
    def candidate(self) -> str:
        return self.model(self.final_stage)

    def deps(self, stage: str) -> list[str]:
        final = self.final_stage
        table = {
            "data": [], "sft": ["data"], "eval": ["sft"], "feedback": ["sft"], "reward": ["feedback"],
            "dpo": ["feedback"], "online": ["reward"] + (["dpo"] if "dpo" in self.plan else ["feedback"]),
            "final_eval": [final, "eval"], "review": [final, "feedback"],
            "gate": ["final_eval", "eval"] + (["review"] if "review" in self.plan else ["feedback"]),
            "promote": ["gate"], "report": ["gate", "promote"],
        }
        return [d for d in table[stage] if d in self.plan]

    def key(self, stage: str) -> str:
        cfg = self.config
        extra: dict[str, Any] = {}
        if stage == "data":
            extra["files"] = {str(s.path): sha256_file(s.path) for s in [*cfg.data.sources, cfg.data.replay]
                              if s is not None and s.path is not None and Path(s.path).is_file()}
        if stage in ("eval", "feedback", "review", "gate"):
            extra["incumbent"] = self.incumbent
        if stage in ("feedback", "review") and cfg.feedback.prompts and Path(cfg.feedback.prompts).is_file():
            extra["prompts"] = sha256_file(cfg.feedback.prompts)
        if stage in ("eval", "final_eval"):
            from harness.suites import select_suites

            extra["suites"] = {s.id: s.version for s in select_suites(cfg.eval.suites, cfg.eval.suite_dirs)}
        if stage == "gate":
            from harness.gate import DEFAULT_POLICY

            policy = Path(cfg.gate.policy or DEFAULT_POLICY)
            extra["policy"] = sha256_file(policy) if policy.is_file() else str(policy)
        if stage == "online":
            extra["align"] = cfg.cycle.align
        if stage == "promote":
            extra["approver"], extra["promote"] = cfg.cycle.approver, cfg.cycle.promote
        if stage == "report":
            extra["pdf"] = [cfg.cycle.pdf, cfg.cycle.pdf_renderer]
        sections = {s: getattr(cfg, s).model_dump(mode="json", exclude=_volatile(s)) for s in SECTIONS[stage]}
        return stable_hash({"stage": stage, "seed": cfg.run.seed, "model": cfg.model.model_dump(mode="json"),
                            "sections": sections, "deps": [self.state["stages"].get(d, {}).get("key") for d in self.deps(stage)],
                            "extra": extra})[:16]

    # ------------------------------------------------------------------ the loop

    def run(self) -> CycleResult:
        cfg = self.config
        missing = [s for s in type(cfg).model_fields if s not in cfg.model_fields_set and s not in _NOT_A_STAGE]
        if missing:
            _log.info(f"the config has no {', '.join(missing)} section{'s' if len(missing) > 1 else ''}: "
                      "using the defaults ('harness config show' prints them)")
        _log.info(f"cycle '{cfg.run.id}' in {self.run_dir}: {' -> '.join(self.plan)}; incumbent {self.incumbent}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.save()
        self._start_label_studio_early()
        self.forced = forced = set(self.plan[self.plan.index(self.from_stage):]) if self.from_stage else set()
        stopped: tuple[str, int] | None = None
        for i, stage in enumerate(self.plan, 1):
            record = self.state["stages"].get(stage, {})
            key = self.key(stage)
            # A stage that finished with a warning (an optional output skipped) is tried again: the missing
            # tool may be there now.
            if stage not in forced and record.get("status") in _COMPLETE and record.get("key") == key \
                    and not record.get("warnings") \
                    and all(Path(p).exists() for p in record.get("outputs", {}).get("paths", [])):
                _log.done(f"[{i}/{len(self.plan)}] {stage}: unchanged, skipped ({record.get('summary', '')})")
                record["this_run"] = "skipped"
                continue
            # Inputs changed since the recorded attempt (or --from): replace that stage's earlier output.
            force = stage in forced or (record.get("key") not in (None, key))
            _log.console.rule(f"[bold][{i}/{len(self.plan)}] {stage}: {TITLES[stage]}")
            record = {"status": "running", "key": key, "started": utc_now()}
            self.state["stages"][stage] = record
            self.current = stage
            self.save()
            started = time.perf_counter()
            try:
                done = _RUNNERS[stage](self, force)
            except _Pause as pause:
                record.update(status=pause.status, summary=str(pause), seconds=round(time.perf_counter() - started, 1),
                              this_run=pause.status)
                self.save()
                _log.warn(str(pause))
                stopped = (pause.status, pause.exit_code)
                break
            except BaseException as exc:
                record.update(status="failed", seconds=round(time.perf_counter() - started, 1), this_run="failed",
                              error=_describe(exc), finished=utc_now())
                self.state["outcome"] = f"failed at {stage}"
                self.save()
                self._table()
                error = _stage_error(stage, exc, self)
                if error is exc:
                    raise
                raise error from None
            record.update(status=done.status, summary=done.summary, outputs=done.outputs, finished=utc_now(),
                          seconds=round(time.perf_counter() - started, 1), this_run=done.status,
                          warnings=done.warnings)
            self.save()
            _log.done(f"{stage}: {done.summary} ({record['seconds']:.0f}s)")
            if self.until == stage and i < len(self.plan):
                stopped = (f"stopped after {stage} (--until)", 0)
                break
        if stopped is not None:
            outcome, exit_code = stopped
        else:
            status = self.state["stages"].get("promote", {}).get("status")
            outcome = {"rejected": "rejected", "awaiting sign-off": "passed, awaiting sign-off", "done": "promoted",
                       "not promoted": "passed, not promoted"}.get(status, "finished")
            exit_code = EXIT_REJECTED if outcome == "rejected" else 0
        self.state["outcome"] = outcome
        self.save()
        rows = self._table()
        warnings = [f"{s}: {w}" for s in self.plan for w in self.state["stages"].get(s, {}).get("warnings", [])]
        for warning in warnings:
            _log.warn(warning)
        report = self.state["stages"].get("report", {}).get("outputs", {}).get("html")
        decision = self.state["stages"].get("gate", {}).get("outputs", {}).get("decision_id")
        return CycleResult(self.run_dir, rows, outcome, exit_code, Path(report) if report else None, decision, warnings)

    def _table(self) -> list[dict[str, Any]]:
        from rich.table import Table

        rows = []
        table = Table("stage", "status", "time", "result", title=f"cycle {self.config.run.id}")
        for stage in self.plan:
            rec = self.state["stages"].get(stage, {})
            status = rec.get("this_run") or ("not run" if not rec else f"{rec.get('status')} (earlier)")
            if status == "skipped":
                status = "unchanged"
            if rec.get("warnings") and status in ("done", "unchanged"):
                status += " (warning)"
            rows.append({"stage": stage, "status": status, "seconds": rec.get("seconds"),
                         "summary": rec.get("error") if rec.get("status") == "failed" else rec.get("summary")})
            colour = {"done": "green", "unchanged": "green", "failed": "red", "rejected": "red"}.get(status, "yellow")
            secs = rec.get("seconds")
            shown = f"{secs:.0f}s" if isinstance(secs, (int, float)) and rec.get("this_run") not in (None, "skipped") else ""
            table.add_row(stage, f"[{colour}]{status}[/]", shown, str(rows[-1]["summary"] or ""))
        _log.console.print(table)
        return rows

    def _start_label_studio_early(self) -> None:
        """Start the local Label Studio in the background while training runs (its first start takes a
        minute); the review stages wait for it. Nothing to do for an existing server (feedback.url)."""
        import threading

        from feedback import server

        fb = self.config.feedback
        reviews = [s for s in ("feedback", "review") if s in self.plan
                   and self.state["stages"].get(s, {}).get("status") not in _COMPLETE]
        if fb.url is not None or not reviews or self.until in ("data", "sft", "eval"):
            return
        info = server.status(fb.data_dir)
        if info is not None and info.healthy:
            return

        def start() -> None:
            try:
                server.serve(data_dir=fb.data_dir, port=fb.port, venv=fb.venv)
            except BaseException as exc:  # reported by the review stage that needs the server
                self._server_error = exc

        _log.info("starting the local Label Studio in the background (the review stages need it)")
        self._server_thread = threading.Thread(target=start, name="label-studio-start", daemon=True)
        self._server_thread.start()

    def label_studio(self) -> None:
        """The local Label Studio, up (started now if it is not)."""
        from feedback import server

        fb = self.config.feedback
        if fb.url is not None:
            return
        thread = getattr(self, "_server_thread", None)
        if thread is not None:
            thread.join()
            self._server_thread = None
            error = getattr(self, "_server_error", None)
            if error is not None:
                self._server_error = None
                raise error
        server.serve(data_dir=fb.data_dir, port=fb.port, venv=fb.venv)  # returns the running one

    # ------------------------------------------------------------------ derived configs

    def with_(self, **sections: dict[str, Any]) -> CycleConfig:
        cfg = self.config
        return cfg.model_copy(update={name: getattr(cfg, name).model_copy(update=values) for name, values in sections.items()})

    def review_config(self, final: bool) -> CycleConfig:
        fb = self.config.feedback
        values: dict[str, Any] = {"candidate": self.candidate if final else self.model("sft"),
                                  "incumbent": self.incumbent}
        if final:
            values["output_dir"] = self.run_dir / "review"
            values["project"] = f"{(fb.project or f'{self.config.run.id} review')[:42]} (final)"  # LS titles: <= 50
        return self.with_(feedback=values)

    def gate_config(self) -> CycleConfig:
        feedback_dir = self.run_dir / ("review" if "review" in self.plan else "feedback")
        return self.with_(gate={"candidate": self.candidate, "incumbent": self.incumbent,
                                "feedback_dir": self.config.gate.feedback_dir or feedback_dir})


_COMPLETE = ("done", "rejected", "awaiting sign-off", "not promoted")


def _volatile(section: str) -> set[str]:
    """Fields that do not change a stage's result (waiting and logging)."""
    return {"feedback": {"wait_minutes"}, "sft": {"logging_steps"}}.get(section, set())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HarnessError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


def _stage_error(stage: str, exc: BaseException, cycle: _Cycle) -> BaseException:
    resume = f"harness cycle --resume {cycle.config.run.id}"
    if isinstance(exc, KeyboardInterrupt):
        _log.warn(f"interrupted during {stage}; finished stages are kept: '{resume}' continues at {stage}")
        return exc
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what = "the disk is full" if exc.errno != errno.EFBIG else "a file grew past the allowed size"
        return HarnessError(f"the cycle stopped at stage '{stage}': {what} ({exc.strerror}) while writing "
                            f"{exc.filename or 'an artifact'}; nothing was half-written",
                            hint=f"free space under {cycle.run_dir}, then '{resume}' continues at {stage}")
    if isinstance(exc, HarnessError):
        return HarnessError(f"the cycle stopped at stage '{stage}': {exc.message}",
                            where=exc.where, hint=f"{exc.hint + '; then ' if exc.hint else 'fix it, then '}'{resume}' "
                                                  f"continues at {stage} (finished stages are not redone)")
    # An unexpected error (a bug, or a library's): the same one-line report and exit code 2 as any failed
    # stage, never read as the gate's rejection (exit 1); the traceback goes to a file for a bug report.
    import traceback

    if not isinstance(exc, Exception):  # SystemExit and the like pass through
        return exc
    log = cycle.run_dir / f"{stage}-error.txt"
    try:
        log.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    except OSError:
        log = None
    return HarnessError(f"the cycle stopped at stage '{stage}': {_describe(exc)}",
                        hint=(f"the traceback is in {log}; " if log else "") + f"'{resume}' continues at {stage} "
                             "(finished stages are not redone)")


# ---------------------------------------------------------------------- the stages


def _num(value: Any, spec: str = ".3f") -> str:
    """A metric for a one-line summary; 'n/a' where a short run logged none."""
    return "n/a" if value is None else format(value, spec)


def _data(c: _Cycle, force: bool) -> _Done:
    from harness import data

    r = data.run(c.config, force=force)
    n = r.counts
    return _Done(f"{n['train']} training and {n['validation']} validation chats ({n['dropped']} dropped, "
                 f"{n['replay_added']} replay)", {"paths": [str(r.card_path)]})


def _sft(c: _Cycle, force: bool) -> _Done:
    from rlhf import sft

    r = sft.run(c.config, resume=not force, force=force)
    m = r.metrics
    return _Done(f"validation loss {_num(m.get('eval_loss_initial'))} -> {_num(m.get('eval_loss_final'))} in {m['global_step']} steps",
                 {"paths": [str(r.model_path)], "model": str(r.model_path)})


def _scores(c: _Cycle, models: list[str], force: bool) -> _Done:
    from harness import evaluate

    refs = list(dict.fromkeys(models))
    # The result cache is keyed on model, suite, data and settings, so a changed config never reuses a
    # wrong result; only an explicit --from re-scores what is cached.
    cfg = c.with_(eval={"models": refs, **({"use_cache": False} if c.current in c.forced else {})})
    r = evaluate.run(cfg)
    headline = []
    for res in r.results:
        if res.suite.startswith("domain/") and res.model == refs[-1]:
            m = next(iter(res.summary["metrics"].items()), None)
            if m:
                headline.append(f"{res.suite.split('/')[1]} {m[0]} {_num(m[1]['estimate'])}")
    cached = sum(1 for res in r.results if res.cached)
    return _Done(f"{len(r.results)} suite results for {len(refs)} model(s) ({cached} cached)"
                 + (f"; candidate: {', '.join(headline)}" if headline else ""),
                 {"paths": [str(res.folder / "summary.json") for res in r.results]})


def _eval(c: _Cycle, force: bool) -> _Done:
    return _scores(c, [c.config.model.base, c.incumbent, c.model("sft")], force)


def _final_eval(c: _Cycle, force: bool) -> _Done:
    return _scores(c, [c.incumbent, c.candidate], force)


def _review_round(c: _Cycle, final: bool, force: bool) -> _Done:
    from feedback import preferences, pull, push, simulate

    cfg = c.review_config(final)
    fb = cfg.feedback
    c.label_studio()
    pushed = push.run(cfg)
    where = f"{pushed.url}/projects/{pushed.project_id}"
    stage = "review" if final else "feedback"
    if c.until == stage and not fb.simulate:
        raise _Pause(f"{pushed.created + pushed.already_there} tasks are in Label Studio ({where}); when the reviewers "
                     f"are done: harness cycle --resume {c.config.run.id}", "paused", 0)
    if fb.simulate:
        simulate.run(cfg)
    deadline = time.monotonic() + fb.wait_minutes * 60
    while True:
        pulled = pull.run(cfg)
        done, total = _labeled(push.feedback_dir(cfg), fb.overlap)
        if done >= total:
            break
        if time.monotonic() >= deadline:
            raise _Pause(f"waiting for reviewers: {done} of {total} tasks have {fb.overlap} reviews ({where}); "
                         f"when they are done: harness cycle --resume {c.config.run.id}", "waiting", EXIT_WAITING)
        _log.info(f"{done} of {total} tasks fully reviewed; checking again in a minute")
        time.sleep(min(60.0, max(1.0, deadline - time.monotonic())))
    exported = preferences.run(cfg)
    s = exported.summary
    win, unsafe = s["win_rate"], s["unsafe_rate"]
    return _Done(f"{pulled.annotations} reviews{' (simulated)' if s.get('simulated') else ''}, {exported.pairs} preference "
                 f"pairs; win rate {_num(win['estimate'], '.2f')} [{_num(win['ci_low'], '.2f')}, {_num(win['ci_high'], '.2f')}], "
                 f"unsafe rate {_num(unsafe['estimate'], '.2f')}", {"paths": [str(exported.preferences_path)], "url": where})


def _labeled(folder: Path, overlap: int) -> tuple[int, int]:
    """(tasks with at least ``overlap`` usable reviews, tasks)."""
    from collections import Counter

    from harness.artifacts import read_jsonl

    tasks = read_jsonl(folder / "tasks.jsonl")
    path = folder / "annotations.jsonl"
    counts = Counter(r["task_key"] for r in read_jsonl(path)) if path.is_file() else Counter()
    return sum(1 for t in tasks if counts[t["task_key"]] >= overlap), len(tasks)


def _reward(c: _Cycle, force: bool) -> _Done:
    from rlhf import reward

    r = reward.run(c.config, force=force)
    held = r.metrics.get("heldout") or {}
    acc = (f"held-out pairwise accuracy {_num(held['accuracy'], '.2f')} [{_num(held.get('ci_low'), '.2f')}, "
           f"{_num(held.get('ci_high'), '.2f')}] on {held['n']} pairs"
           if held.get("accuracy") is not None else "no held-out pairs")
    return _Done(acc, {"paths": [str(r.model_path)]})


def _dpo(c: _Cycle, force: bool) -> _Done:
    from rlhf import dpo

    cfg = c.config if c.config.dpo.policy else c.with_(dpo={"policy": c.model("sft")})
    r = dpo.run(cfg, force=force)
    train = r.metrics.get("train") or {}
    held = (r.metrics.get("heldout") or {}).get("implicit_reward") or {}
    text = f"training log-prob margin {_num(train.get('logp_margin_change'), '+.2f')}"
    if held.get("accuracy") is not None:
        text += f"; held-out preference accuracy {_num(held['accuracy'], '.2f')} on {held['n']} pairs"
    return _Done(text, {"paths": [str(r.model_path)], "model": str(r.model_path)})


def _online(c: _Cycle, force: bool) -> _Done:
    from rlhf import online

    cfg = c.config
    if cfg.online.policy is None:
        cfg = c.with_(online={"policy": c.model("dpo" if "dpo" in c.plan else "sft")})
    r = online.run(cfg, force=force)
    m = r.metrics
    reward, kl = m.get("reward") or {}, m.get("kl") or {}
    text = (f"reward {_num(reward.get('first'))} -> {_num(reward.get('last'))}, "
            f"KL {_num(kl.get('last'))} in {m.get('global_step')} steps")
    if m.get("stopped_by_kl_ceiling"):
        text += " (stopped by the KL ceiling)"
    return _Done(text, {"paths": [str(r.model_path)], "model": str(r.model_path)})


def _gate(c: _Cycle, force: bool) -> _Done:
    from harness import gate

    r = gate.run(c.gate_config())
    d = r.decision
    return _Done(f"{d['decision_id']}: {d['outcome']} ({d['summary']})",
                 {"paths": [str(r.decision_path)], "decision_id": d["decision_id"], "passed": r.passed})


def _promote(c: _Cycle, force: bool) -> _Done:
    from harness import registry

    gate_out = c.state["stages"]["gate"]["outputs"]
    decision_id = gate_out["decision_id"]
    if not gate_out["passed"]:
        return _Done(f"rejected: {decision_id} did not pass, the champion stays", status="rejected")
    if not c.config.cycle.promote:
        return _Done(f"{decision_id} passed; not promoted (cycle.promote is false)", status="not promoted")
    if registry.is_promoted(decision_id):
        return _Done(f"{decision_id} was already promoted")
    decision = read_json(c.run_dir / "gate" / f"{decision_id}.json")
    current = registry.champion_fingerprint(c.config)
    if current is not None and current[1] != decision["incumbent"]["fingerprint"]:
        # E.g. this run promoted its earlier candidate, then a setting changed: the new candidate was gated
        # against the run's incumbent, not against today's champion, so it may not replace the champion.
        return _Done(f"{decision_id} passed but was gated against {decision['incumbent']['ref']}, and the champion is "
                     f"now {current[0]}: not promoted. To gate against the champion, run the cycle again with "
                     f"gate.incumbent={registry.champion_ref(c.config)} (SFT is not redone) or start a new run id",
                     status="not promoted")
    approver = c.config.cycle.approver
    if decision.get("signoff_required") and not approver:
        return _Done(f"{decision_id} passed and needs a sign-off: harness promote {decision_id} --approver NAME",
                     status="awaiting sign-off")
    r = registry.promote(c.config, decision_id, approver)
    return _Done(f"{r.model} v{r.version} is the champion" + (f", signed off by {approver}" if approver else ""),
                 {"version": r.version})


def _report(c: _Cycle, force: bool) -> _Done:
    from reports import audit

    r = audit.run(c.gate_config(), pdf=c.config.cycle.pdf, renderer=c.config.cycle.pdf_renderer)
    return _Done(f"{r.html}" + (f" (+ PDF by {r.pdf_renderer}, JSON)" if r.pdf else " (+ JSON)"),
                 {"paths": [str(r.html), str(r.json)] + ([str(r.pdf)] if r.pdf else []), "html": str(r.html)},
                 warnings=list(r.warnings))


_RUNNERS: dict[str, Callable[[_Cycle, bool], _Done]] = {
    "data": _data, "sft": _sft, "eval": _eval, "feedback": lambda c, f: _review_round(c, False, f),
    "reward": _reward, "dpo": _dpo, "online": _online, "final_eval": _final_eval,
    "review": lambda c, f: _review_round(c, True, f), "gate": _gate, "promote": _promote, "report": _report,
}


def run(config: CycleConfig, *, config_file: Path | None = None, overrides: list[str] | tuple[str, ...] = (),
        from_stage: str | None = None, until: str | None = None) -> CycleResult:
    """Run the cycle for ``config`` (``run.id`` required); see the module docstring."""
    for name, value in (("--from", from_stage), ("--until", until)):
        if value is not None and value not in STAGES:
            raise HarnessError(f"{name} {value}: no such stage", hint=f"stages: {', '.join(STAGES)}")
    cycle = _Cycle(config, config_file=config_file, overrides=list(overrides), from_stage=from_stage, until=until)
    for name, value in (("--from", from_stage), ("--until", until)):
        if value is not None and value not in cycle.plan:
            raise HarnessError(f"{name} {value}: this cycle does not run that stage (plan: {', '.join(cycle.plan)})",
                               hint="check cycle.align and cycle.review_final")
    if from_stage:
        earlier = [s for s in cycle.plan[: cycle.plan.index(from_stage)]
                   if cycle.state["stages"].get(s, {}).get("status") not in _COMPLETE]
        if earlier:
            raise HarnessError(f"--from {from_stage}: earlier stages have not finished ({', '.join(earlier)})",
                               hint="run the cycle without --from first")
    return cycle.run()
