"""``harness report diff RUN_A RUN_B``: what changed between two cycles (e.g. since the version approved
last quarter), as ``diff-<RUN_A>.html`` (self-contained, plain words first) and ``diff-<RUN_A>.json``
(a :class:`RunDiff`), by default in ``<run B>/report/``.

Both arguments are run ids under ``run.root``; with ``versions=True`` they are registry versions of
``registry.model_name``: version -> its ``decision_id`` tag -> the run folder holding that decision.

What is compared, all read from what the runs left behind:

* config: ``<run>/config.yaml`` (the resolved config the cycle wrote at its start) when both runs have
  it, else both manifests' per-stage configs (``manifest.json``: data, sft + model, eval, reward, dpo,
  online). Changed keys as ``dpo.beta: 0.1 -> 0.2``; ``run.id`` is not a change; paths are shown
  relative to their run (``<run>/...``), the working directory or ``run.root``.
* data: ``data/data_card.json`` (row counts, drop reasons, input and output SHA-256);
* base model, and the method of each training stage (``<stage>/result.json``);
* metrics per model role (candidate, sft_candidate, incumbent, base; other models by fingerprint) and
  suite/metric: run A's estimate, run B's, the change and its 95 % CI. *Paired* when both runs scored
  the same documents (same suite version and data; matched by document id, :func:`harness.compare.compare_suite`,
  whichever models they were); *unpaired* otherwise (two independent estimates,
  :func:`harness.stats.unpaired_difference`; without per-sample results, no CI). Each row says which.
* policy (name, version, rules) and decision (outcome, failed rules, promoted version).

Two runs belong to the same project when they register under the same ``registry.model_name`` (from
their ``config.yaml``, else the model name the ledger records their promotion under); comparing runs
of two projects is an error. When a run's project cannot be told (no config.yaml and no promotion, or an
unreadable ledger) the diff says so first (``project_checked: false``, a note). A changed base model is a
change within a project, not another project.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.artifacts import utc_now
from harness.config import CycleConfig
from harness.errors import HarnessError
from harness.layout import RunLayout
from harness.schemas import Artifact, DataCard, GateDecision, TrainingResult, artifact_dict, write_artifact
from reports._diff_metrics import evaluated, metric_changes
from reports.diff_schema import (
    Change, DecisionDiff, DecisionSide, MetricChange, PolicyDiff, RunDiff, RunRef, StageMethod,
)

__all__ = ["RunDiff", "DiffResult", "build", "run"]

HERE = Path(__file__).parent
_TRAINING = ("sft", "reward", "dpo", "online")


@dataclass(frozen=True)
class DiffResult:
    html: Path
    json: Path
    diff: RunDiff


@dataclass
class _Run:
    run_id: str
    layout: RunLayout
    version: str | None = None
    decision_id: str | None = None

    def __post_init__(self) -> None:
        self.read: list[str] = []

    def artifact(self, rel: str, model: type[Artifact] | None = None) -> dict[str, Any] | None:
        path = self.layout.dir / rel
        if not path.is_file():
            return None
        self.read.append(rel)
        if model is None:
            from harness.artifacts import read_json

            return read_json(path)
        return artifact_dict(path, model)


# ---------------------------------------------------------------- finding the runs


def _runs(config: CycleConfig, a: str, b: str, versions: bool) -> tuple[_Run, _Run]:
    root = Path(config.run.root)
    if not versions:
        out = []
        for run_id in (a, b):
            folder = root / run_id
            if not folder.is_dir():
                known = sorted(p.name for p in root.glob("*") if p.is_dir() and not p.name.startswith("."))[:10]
                raise HarnessError(f"run '{run_id}' does not exist under {root}",
                                   hint=f"runs there: {', '.join(known)}" if known else "check run.root")
            out.append(_Run(run_id, RunLayout(folder)))
        return out[0], out[1]
    from harness import registry

    anywhere = config.model_copy(update={"run": config.run.model_copy(update={"id": None})})
    out = []
    for version in (a, b):
        row = registry.show_version(config, version)  # an unknown version is a HarnessError
        if not row.get("decision_id"):
            raise HarnessError(f"{config.registry.model_name} v{version} carries no decision_id tag",
                               hint="it was registered outside the harness; compare run ids instead")
        _, path = registry.find_decision(anywhere, row["decision_id"])
        folder = path.parent.parent
        out.append(_Run(folder.name, RunLayout(folder), str(version), row["decision_id"]))
    return out[0], out[1]


def _ledger(notes: list[str]) -> list[dict[str, Any]] | None:
    """The ledger's entries; None (and a note) when a line of it cannot be read."""
    from harness import ledger

    path = ledger.default_path()
    try:
        return ledger.read_entries(path)
    except (HarnessError, UnicodeDecodeError):
        notes.append(f"the ledger ({path.name}) is unreadable (a line is not valid JSON): promotions are not shown; "
                     "'harness ledger verify' says what changed")
        return None


def _promotion(entries: list[dict[str, Any]] | None, decision: dict) -> dict[str, Any] | None:
    return next((e["subject"] for e in entries or () if e.get("action") in ("promote", "repair")
                 and (e.get("subject") or {}).get("decision_id") == decision["decision_id"]), None)


def _project(view: dict[str, Any] | None, decision: dict | None, entries: list[dict[str, Any]] | None) -> str | None:
    name = ((view or {}).get("registry") or {}).get("model_name")
    if name or decision is None:
        return name
    return (_promotion(entries, decision) or {}).get("model")


def _unknown_project(run: _Run, view: dict | None, decision: dict | None, entries: list | None) -> str:
    """Why the project of ``run`` is unknown."""
    if view is not None:
        return f"the config.yaml of run '{run.run_id}' names no registry.model_name"
    if decision is None:
        return f"run '{run.run_id}' has neither config.yaml nor a gate decision"
    if entries is None:
        return f"run '{run.run_id}' has no config.yaml and the ledger is unreadable"
    return f"run '{run.run_id}' has neither config.yaml nor a promotion in the ledger"


# ---------------------------------------------------------------- config, data, base, methods


def _portable(value: Any, run: _Run, root: Path) -> Any:
    """Absolute paths made relative: to the run (``<run>/...``), the working directory, or run.root."""
    if isinstance(value, dict):
        return {k: _portable(v, run, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v, run, root) for v in value]
    if not isinstance(value, str) or not os.path.isabs(value):
        return value
    path = Path(value)
    for base, prefix in ((run.layout.dir, "<run>/"), (root, "<runs>/"), (Path.cwd(), "")):
        for b in {base.absolute(), base.resolve()}:
            if path == b:
                return prefix.rstrip("/") or "."
            if path.is_relative_to(b):
                return prefix + path.relative_to(b).as_posix()
    return os.path.relpath(value, Path.cwd())


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _changes(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    return [Change(key=k, a=a.get(k), b=b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _snapshot(run: _Run) -> dict[str, Any] | None:
    import yaml

    path = run.layout.resolved_config
    if not path.is_file():
        return None
    run.read.append(path.name)
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _manifest_view(run: _Run) -> dict[str, Any]:
    manifest = run.artifact("manifest.json") or {}
    view: dict[str, Any] = {}
    for stage, entry in (manifest.get("stages") or {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("config"), dict):
            view[stage] = entry["config"]
            if isinstance(entry.get("model"), dict):
                view["model"] = entry["model"]
    return view


def _data(run: _Run, root: Path) -> dict[str, Any] | None:
    card = run.artifact("data/data_card.json", DataCard)
    if card is None:
        return None
    inputs = {f"{i.get('domain', '?')}:{Path(str(i.get('source') or i.get('hub') or i.get('path') or n)).name}":
              i.get("sha256") or i.get("hub") for n, i in enumerate(card["inputs"])}
    return _flatten({"fingerprint": card["fingerprint"], "counts": card["counts"], "drops": card["drop_summary"],
                     "inputs": inputs, "outputs": card["outputs"]})


def _eval_dir(run: _Run, view: dict[str, Any]) -> Path:
    """Where the run's evaluation results are: gate.eval_dir, eval.output_dir, else ``<run>/eval``."""
    chosen = (view.get("gate") or {}).get("eval_dir") or (view.get("eval") or {}).get("output_dir")
    return Path(chosen) if chosen else run.layout.eval


def _method(result: dict[str, Any] | None) -> str | None:
    if result is None:
        return None
    method = result.get("method") or result.get("objective") or result.get("algorithm") or "?"
    return f"{method} ({result['loss_type']})" if result.get("loss_type") else method


# ---------------------------------------------------------------- policy and decision


def _policy(da: dict | None, db: dict | None) -> PolicyDiff:
    def name(d: dict | None) -> str | None:
        return f"{d['policy']['name']} v{d['policy']['version']}" if d else None

    changes = []
    if da and db:
        pa, pb = da["policy"], db["policy"]
        for key in ("name", "version", "allow_simulated"):
            if pa.get(key) != pb.get(key):
                changes.append(f"{key}: {pa.get(key)} -> {pb.get(key)}")
        ra, rb = ({r["id"]: r["requirement"] for r in d["rules"]} for d in (da, db))
        changes += [f"rule {i} added: {rb[i]}" for i in rb if i not in ra]
        changes += [f"rule {i} removed: {ra[i]}" for i in ra if i not in rb]
        changes += [f"rule {i}: {ra[i]} -> {rb[i]}" for i in ra if i in rb and ra[i] != rb[i]]
        if not changes and pa.get("sha256") != pb.get("sha256"):
            changes.append("the policy file changed (same name, version and rules)")
    elif da or db:
        changes.append(f"only run {'A' if da else 'B'} has a gate decision")
    return PolicyDiff(a=name(da), b=name(db), changes=changes)


def _side(d: dict | None, entries: list[dict[str, Any]] | None) -> DecisionSide | None:
    if d is None:
        return None
    promotion = _promotion(entries, d)
    promoted = str(promotion.get("version")) if promotion else None
    return DecisionSide(decision_id=d["decision_id"], outcome=d["outcome"],
                        failed_rules=[r["id"] for r in d["rules"] if not r["passed"]], promoted_version=promoted)


def _decision(da: dict | None, db: dict | None, entries: list[dict[str, Any]] | None) -> DecisionDiff:
    a, b = _side(da, entries), _side(db, entries)
    changes = []
    if a and b:
        if a.outcome != b.outcome:
            changes.append(f"outcome: {a.outcome} -> {b.outcome}")
        if a.failed_rules != b.failed_rules:
            changes.append(f"failed rules: {', '.join(a.failed_rules) or 'none'} -> {', '.join(b.failed_rules) or 'none'}")
    elif a or b:
        changes.append(f"only run {'A' if a else 'B'} has a gate decision")
    return DecisionDiff(a=a, b=b, changes=changes)


# ---------------------------------------------------------------- the document


def _sign(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:+.{digits}f}"


def _clear(m: MetricChange) -> bool:
    """The change's CI excludes zero."""
    return m.ci_low is not None and m.ci_high is not None and (m.ci_low > 0 or m.ci_high < 0)


def _summary(d: dict[str, Any]) -> list[str]:
    out = []
    if d["config"]:
        shown = "; ".join(f"{c.key} {c.a!r} -> {c.b!r}" for c in d["config"][:3])
        more = f" and {len(d['config']) - 3} more" if len(d["config"]) > 3 else ""
        out.append(f"{len(d['config'])} config key{'s' if len(d['config']) > 1 else ''} changed: {shown}{more}.")
    if d["data"]:
        out.append(f"The training data changed ({len(d['data'])} fields of the data card, e.g. {d['data'][0].key}).")
    if d["base_model"].a != d["base_model"].b:
        out.append(f"The base model changed: {d['base_model'].a} -> {d['base_model'].b}.")
    out += [f"{m.stage} method: {m.a or 'not run'} -> {m.b or 'not run'}." for m in d["methods"] if m.changed]
    moved = [m for m in d["metrics"] if m.change is None or abs(m.change) > 1e-12]
    moved.sort(key=lambda m: (not _clear(m), -abs(m.change or 0)))
    for m in moved[:3]:
        if m.comparison == "only in one run":
            out.append(f"{m.role}'s {m.suite} {m.metric}: {m.note}.")
            continue
        ci = f" [{_sign(m.ci_low)}, {_sign(m.ci_high)}]" if m.ci_low is not None else " (no CI)"
        out.append(f"{m.role}'s {m.suite} {m.metric} {_sign(m.change)}{ci}, {m.comparison}"
                   + (f", n={m.n}" if m.n else "") + ".")
    if len(moved) > 3:
        out.append(f"{len(moved) - 3} more metric changes (see Metrics).")
    out += [f"Policy: {c}." for c in d["policy"].changes]
    out += [f"Decision: {c}." for c in d["decision"].changes]
    return out or ["No changes: the same config, data, base model, methods, metrics, policy and decision."]


def build(config: CycleConfig, run_a: str, run_b: str, *, versions: bool = False) -> RunDiff:
    """The diff of two runs under ``config.run.root`` (or two registry versions of ``registry.model_name``)."""
    ra, rb = _runs(config, run_a, run_b, versions)
    root, notes = Path(config.run.root), []
    decisions = [r.artifact(f"gate/{r.decision_id}.json" if r.decision_id else "gate/decision.json", GateDecision)
                 for r in (ra, rb)]
    snaps = [_snapshot(r) for r in (ra, rb)]
    entries = _ledger(notes)
    projects = [_project(s, d, entries) for s, d in zip(snaps, decisions)]
    if versions:
        projects = [p or config.registry.model_name for p in projects]
    if None not in projects and projects[0] != projects[1]:
        raise HarnessError(f"runs '{ra.run_id}' and '{rb.run_id}' belong to different projects (registry models "
                           f"'{projects[0]}' and '{projects[1]}')", hint="compare runs of the same registered model")
    unchecked = "; ".join(_unknown_project(r, s, d, entries) for r, s, d, p
                          in zip((ra, rb), snaps, decisions, projects) if p is None)
    if unchecked:
        notes.append(f"could not check that both runs belong to the same project: {unchecked}")
    if None in snaps:
        raw = [_manifest_view(r) for r in (ra, rb)]
        source = "manifest.json"
        notes.append("config from the manifests' per-stage configs (a run without config.yaml: started before "
                     "the cycle recorded its resolved config, or stages run one by one)")
    else:
        raw, source = snaps, "config.yaml"
    views = [_portable(v, r, root) for v, r in zip(raw, (ra, rb))]
    flat = [_flatten(v) for v in views]
    for f in flat:
        f.pop("run.id", None)
    results = [{s: r.artifact(f"{s}/result.json", TrainingResult) for s in _TRAINING} for r in (ra, rb)]
    bases = [(v.get("model") or {}).get("base") or (res["sft"] or {}).get("base_model") for v, res in zip(raw, results)]
    data = [_data(r, root) for r in (ra, rb)]
    if (data[0] is None) != (data[1] is None):
        notes.append(f"only run {'A' if data[0] is not None else 'B'} has a data card (data/data_card.json)")
    suite_dirs = tuple(Path(p) for p in (config.eval.suite_dirs or ()))
    results_of = [evaluated(r.layout.dir, _eval_dir(r, v), d, b, r.read) for r, v, d, b in zip((ra, rb), raw, decisions, bases)]
    doc: dict[str, Any] = {
        "created": utc_now(), "config_source": source, "notes": notes,
        "a": RunRef(run_id=ra.run_id, version=ra.version, project=projects[0],
                    decision_id=(decisions[0] or {}).get("decision_id"), read=ra.read),
        "b": RunRef(run_id=rb.run_id, version=rb.version, project=projects[1],
                    decision_id=(decisions[1] or {}).get("decision_id"), read=rb.read),
        "config": _changes(*flat), "data": _changes(*(d or {} for d in data)),
        "base_model": Change(key="model.base", a=_portable(bases[0], ra, root), b=_portable(bases[1], rb, root)),
        "methods": [StageMethod(stage=s, a=_method(results[0][s]), b=_method(results[1][s]),
                                changed=_method(results[0][s]) != _method(results[1][s]))
                    for s in _TRAINING if results[0][s] or results[1][s]],
        "metrics": metric_changes(*results_of, suite_dirs),
        "policy": _policy(*decisions), "decision": _decision(*decisions, entries),
        "project_checked": not unchecked,
    }
    doc["summary"] = _summary(doc)
    doc["no_changes"] = doc["summary"][0].startswith("No changes")
    if unchecked:  # first: the whole comparison may be of two projects
        doc["summary"].insert(0, f"Could not check that both runs belong to the same project: {unchecked}.")
    return RunDiff(**doc)


def render_html(diff: RunDiff) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "j2"]))
    env.filters["num"] = lambda v, d=3: "—" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))
    env.filters["signed"] = _sign
    return env.get_template("diff.html.j2").render(d=diff)


def run(config: CycleConfig, run_a: str, run_b: str, *, versions: bool = False, output: Path | None = None) -> DiffResult:
    """Write ``diff-<run A>.html`` and ``.json`` into ``output`` (default ``<run B>/report/``)."""
    from harness import log as _log
    from harness.artifacts import atomic_write_text

    diff = build(config, run_a, run_b, versions=versions)
    out = Path(output) if output is not None else Path(config.run.root) / diff.b.run_id / "report"
    out.mkdir(parents=True, exist_ok=True)
    html = atomic_write_text(out / f"diff-{diff.a.run_id}.html", render_html(diff))
    json_path = write_artifact(out / f"diff-{diff.a.run_id}.json", diff)
    first = diff.summary[0]
    if not diff.project_checked:
        _log.warn(first)
        first = diff.summary[1]
    _log.done(f"{diff.a.run_id} -> {diff.b.run_id}: {first} — {html}")
    return DiffResult(html, json_path, diff)
