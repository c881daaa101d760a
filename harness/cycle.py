"""``harness cycle``: the whole tune -> evaluate -> align -> gate loop from one config, resumable.

The stages are plugins (:mod:`harness.stage`, found through entry points); this module only plans
and runs them: data, sft, eval, feedback, reward, dpo, online, final_eval, review, gate, promote,
report (``cycle.align`` and ``cycle.review_final`` leave some out). The incumbent is ``gate.incumbent``,
else the registry's champion, else ``model.base``, fixed for the run when first chosen.

``<run>/cycle.json`` records, per stage, a key (hash of the config sections it reads, its inputs and
the keys of the stages it needs), its status, timing and summary. A re-run skips every complete stage
whose key is unchanged and runs the rest (an edit of ``dpo`` re-runs dpo and what follows, never SFT);
a stage killed midway, or one that finished with a warning, runs again. ``from_stage`` forces a stage
and all after it; ``until`` stops after one (``"feedback"``: once the tasks are pushed, for people).
One cycle writes a run at a time (a lock beside the run folder); ``<run>/config.yaml`` keeps its config."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import log as _log
from harness._lock import run_lock
from harness.artifacts import stable_hash, utc_now
from harness.schemas import CycleState, artifact_dict, write_artifact
from harness.config import CycleConfig, write_resolved_config
from harness.errors import HarnessError, describe, stage_failure
from harness.plugins import in_cycle_order, plan, stages
from harness.stage import COMPLETE, EXIT_REJECTED, EXIT_WAITING, Pause, Stage, StageContext, StageResult

__all__ = ["CycleResult", "run", "preview", "plan", "state_path", "EXIT_REJECTED", "EXIT_WAITING"]

_NOT_A_STAGE = ("run", "model", "merge", "cycle")  # sections no stage is named after: no "using defaults" note
_VOLATILE = {"feedback": {"wait_minutes"}, "sft": {"logging_steps"}}  # fields that do not change a result


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
    from harness.layout import RunLayout
    return RunLayout(Path(run_dir)).cycle_state


class _Runner:
    def __init__(self, config: CycleConfig, stages: list[Stage], *, config_file: Path | None, overrides: list[str],
                 from_stage: str | None, until: str | None):
        self.config, self.layout = config, config.layout()
        self.stages = {s.name: s for s in stages}
        self.until = until
        self.path = self.layout.cycle_state
        self.state: dict[str, Any] = artifact_dict(self.path, CycleState) if self.path.is_file() else {
            "schema_version": 1, "kind": "cycle_state", "run_id": config.run.id, "created": utc_now(), "stages": {}}
        self.state["config_file"] = str(config_file.resolve()) if config_file else None
        self.state["overrides"] = list(overrides)
        names = list(self.stages)
        self.forced = set(names[names.index(from_stage):]) if from_stage else set()
        self.ctx = StageContext(config, self.layout, self._incumbent(), names, self.state["stages"], until=until)

    def save(self) -> None:
        self.state["updated"] = utc_now()
        write_artifact(self.path, self.state, CycleState)

    def _incumbent(self) -> str:
        if self.config.gate.incumbent:
            return self.config.gate.incumbent
        if not self.state.get("incumbent"):
            from harness.gate import default_incumbent

            self.state["incumbent"] = default_incumbent(self.config)
        return self.state["incumbent"]

    def key(self, stage: Stage) -> str:
        cfg = self.config
        sections = {s: getattr(cfg, s).model_dump(mode="json", exclude=_VOLATILE.get(s, set())) for s in stage.sections}
        needs = [self.state["stages"].get(d, {}).get("key") for d in stage.needs if d in self.stages]
        return stable_hash({"stage": stage.name, "seed": cfg.run.seed, "model": cfg.model.model_dump(mode="json"),
                            "sections": sections, "deps": needs,
                            "extra": stage.inputs(self.ctx) if stage.inputs else {}})[:16]

    def _up_to_date(self, stage: Stage, key: str) -> bool:
        record = self.state["stages"].get(stage.name, {})
        return (stage.name not in self.forced and record.get("status") in COMPLETE and record.get("key") == key
                and not record.get("warnings")  # an optional output was skipped: the tool may be there now
                and all(Path(p).exists() for p in record.get("outputs", {}).get("paths", [])))

    def preview(self) -> list[tuple[str, bool]]:
        """(stage, would run) for every planned stage, without running anything: a stage runs when its
        key changed (its config, its inputs, or a stage it needs runs again) or it is not complete."""
        recorded = {name: dict(record) for name, record in self.state["stages"].items()}
        out = []
        try:
            for stage in self.stages.values():
                key = self.key(stage)
                runs = not self._up_to_date(stage, key)
                if runs:  # what it needs downstream is keyed on this new key
                    self.state["stages"][stage.name] = {**self.state["stages"].get(stage.name, {}), "key": key,
                                                        "status": "planned"}
                out.append((stage.name, runs))
        finally:
            self.state["stages"].clear()
            self.state["stages"].update(recorded)
        return out

    def run(self) -> CycleResult:
        cfg, n = self.config, len(self.stages)
        missing = in_cycle_order(s for s in type(cfg).model_fields
                                 if s not in cfg.model_fields_set and s not in _NOT_A_STAGE)
        if missing:
            _log.info(f"the config has no {', '.join(missing)} section{'s' if len(missing) > 1 else ''}: "
                      "using the defaults ('harness config show' prints them)")
        _log.info(f"cycle '{cfg.run.id}' in {self.layout.dir}: {' -> '.join(self.stages)}; incumbent {self.ctx.incumbent}")
        write_resolved_config(cfg)  # (makes the run folder)
        self.save()
        names = list(self.stages)
        this_run = names[: names.index(self.until) + 1] if self.until else names
        for name in this_run:  # e.g. start a server the later stages of this run need, in the background
            stage = self.stages[name]
            if stage.prepare and self.state["stages"].get(name, {}).get("status") not in COMPLETE:
                stage.prepare(self.ctx)
        stopped: tuple[str, int] | None = None
        for i, stage in enumerate(self.stages.values(), 1):
            key = self.key(stage)
            record = self.state["stages"].get(stage.name, {})
            if self._up_to_date(stage, key):
                _log.done(f"[{i}/{n}] {stage.name}: unchanged, skipped ({record.get('summary', '')})")
                record["this_run"] = "skipped"
            else:
                stopped = self._run_stage(i, stage, key, record)
            if stopped is None and self.until == stage.name and i < n:  # --until holds for a skipped stage too
                stopped = (f"stopped after {stage.name} (--until)", 0)
            if stopped is not None:
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
        warnings = [f"{s}: {w}" for s in self.stages for w in self.state["stages"].get(s, {}).get("warnings", [])]
        for warning in warnings:
            _log.warn(warning)
        report = self.ctx.output("report", "html")
        return CycleResult(self.layout.dir, rows, outcome, exit_code, Path(report) if report else None,
                           self.ctx.output("gate", "decision_id"), warnings)

    def _run_stage(self, i: int, stage: Stage, key: str, record: dict) -> tuple[str, int] | None:
        """Run one stage and record it; (outcome, exit code) when it pauses the cycle."""
        self.ctx.force = stage.name in self.forced or record.get("key") not in (None, key)  # replace earlier output
        self.ctx.forced = stage.name in self.forced
        _log.console.rule(f"[bold][{i}/{len(self.stages)}] {stage.name}: {stage.title}")
        record = {"status": "running", "key": key, "started": utc_now()}
        self.state["stages"][stage.name] = record
        self.save()
        started = time.perf_counter()
        try:
            cfg = getattr(self.config, stage.section) if stage.section else None
            result: StageResult = stage.run(self.ctx, cfg)
        except Pause as pause:
            record.update(status=pause.status, summary=str(pause), seconds=round(time.perf_counter() - started, 1),
                          this_run=pause.status)
            self.save()
            _log.warn(str(pause))
            return pause.status, pause.exit_code
        except BaseException as exc:
            record.update(status="failed", seconds=round(time.perf_counter() - started, 1), this_run="failed",
                          error=describe(exc), finished=utc_now())
            self.state["outcome"] = f"failed at {stage.name}"
            self.save()
            self._table()
            error = stage_failure(stage.name, exc, run_id=self.config.run.id, run_dir=self.layout.dir,
                                  error_log=self.layout.error_log(stage.name))
            if error is exc:
                raise
            raise error from None
        result.fingerprint = key
        outputs = {**result.outputs, "paths": result.artifacts}
        record.update(status=result.status, summary=result.summary, outputs=outputs, metrics=result.metrics,
                      finished=utc_now(), seconds=round(time.perf_counter() - started, 1), this_run=result.status,
                      warnings=result.warnings)
        self.save()
        _log.done(f"{stage.name}: {result.summary} ({record['seconds']:.0f}s)")
        return None

    def _table(self) -> list[dict[str, Any]]:
        from rich.table import Table

        rows = []
        table = Table("stage", "status", "time", "result", title=f"cycle {self.config.run.id}")
        for name in self.stages:
            rec = self.state["stages"].get(name, {})
            status = rec.get("this_run") or ("not run" if not rec else f"{rec.get('status')} (earlier)")
            status = "unchanged" if status == "skipped" else status
            if rec.get("warnings") and status in ("done", "unchanged"):
                status += " (warning)"
            rows.append({"stage": name, "status": status, "seconds": rec.get("seconds"),
                         "summary": rec.get("error") if rec.get("status") == "failed" else rec.get("summary")})
            colour = {"done": "green", "unchanged": "green", "failed": "red", "rejected": "red"}.get(status, "yellow")
            secs = rec.get("seconds")
            shown = f"{secs:.0f}s" if isinstance(secs, (int, float)) and rec.get("this_run") not in (None, "skipped") else ""
            table.add_row(name, f"[{colour}]{status}[/]", shown, str(rows[-1]["summary"] or ""))
        _log.console.print(table)
        return rows


def preview(config: CycleConfig, *, from_stage: str | None = None) -> list[tuple[str, bool]]:
    """Which stages a run of ``config`` would run now (True) or skip as unchanged (False); runs nothing."""
    return _runner(config, from_stage=from_stage).preview()


def run(config: CycleConfig, *, config_file: Path | None = None, overrides: list[str] | tuple[str, ...] = (),
        from_stage: str | None = None, until: str | None = None) -> CycleResult:
    """Run the cycle for ``config`` (``run.id`` required); see the module docstring. One cycle per run at a time."""
    with run_lock(config.layout().dir, config.run.id):
        return _runner(config, config_file=config_file, overrides=overrides, from_stage=from_stage, until=until).run()


def _runner(config: CycleConfig, *, config_file: Path | None = None, overrides: list[str] | tuple[str, ...] = (),
            from_stage: str | None = None, until: str | None = None) -> _Runner:
    names = list(stages())
    for name, value in (("--from", from_stage), ("--until", until)):
        if value is not None and value not in names:
            raise HarnessError(f"{name} {value}: no such stage", hint=f"stages: {', '.join(names)}")
    planned_stages = plan(config)
    planned = [s.name for s in planned_stages]
    for name, value in (("--from", from_stage), ("--until", until)):
        if value is not None and value not in planned:
            raise HarnessError(f"{name} {value}: this cycle does not run that stage (plan: {', '.join(planned)})",
                               hint="check cycle.align and cycle.review_final")
    runner = _Runner(config, planned_stages, config_file=config_file, overrides=list(overrides), from_stage=from_stage,
                     until=until)
    if from_stage:
        earlier = [s for s in planned[: planned.index(from_stage)]
                   if runner.state["stages"].get(s, {}).get("status") not in COMPLETE]
        if earlier:
            raise HarnessError(f"--from {from_stage}: earlier stages have not finished ({', '.join(earlier)})",
                               hint="run the cycle without --from first")
    return runner
