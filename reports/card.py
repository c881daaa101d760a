"""The model card of a promoted version: a Hugging Face ``README.md`` (YAML front matter with a
``model-index`` of evaluation results, then the card in Markdown), built with ``huggingface_hub``'s
``ModelCard`` / ``ModelCardData`` / ``EvalResult`` so hub tooling reads it.

``run(config, version)`` (``harness card VERSION``) finds the version's run through the registry (the
version's promote run in MLflow logged the harness run id; the gate decision in ``run.root`` is the
fallback), reads the run's ``report/audit.json`` (writing the audit report first when it is missing or
describes another decision; it logs why), writes ``<run>/report/model_card/README.md`` and stores the card with the
version: an artifact of the version's MLflow run (``model_card/README.md``) and the version's tags
``model_card`` (its ``runs:/`` URI) and ``model_card_sha256``. The cycle's ``report`` stage calls
:func:`for_report` after the audit report of a promoted candidate.

Everything in the card comes from the audit report and the registry; limitations are derived from the
evidence (simulated reviews, an untrusted reward model, small samples, wide intervals, low agreement,
measured bias, a missing bias evaluation or data card), not written by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import atomic_write_text, sha256_file
from harness.config import CycleConfig
from harness.errors import HarnessError
from harness.schemas import artifact_dict
from reports._card_limits import LOW_AGREEMENT, SMALL_N, WIDE_CI, _ci, _evaluated, _finite, _num, limitations

__all__ = ["CardResult", "run", "for_report", "locate", "build_card", "eval_results", "limitations",
           "ARTIFACT_PATH", "TAG", "SMALL_N", "WIDE_CI", "LOW_AGREEMENT"]

ARTIFACT_PATH = "model_card"  # where the card lies among the version's MLflow run artifacts
TAG = "model_card"            # the version's tag holding the card's runs:/ URI
TASK = "text-generation"


@dataclass(frozen=True)
class CardResult:
    path: Path
    model: str
    version: str
    artifact_uri: str | None


def _client():
    from mlflow import MlflowClient

    from harness.registry import tracking_uri

    return MlflowClient(tracking_uri(), tracking_uri())


def locate(config: CycleConfig, version: str) -> tuple[CycleConfig, dict[str, Any]]:
    """The config pointed at the run that produced ``version`` (its ``run.id``), and the version's
    registry row plus its MLflow ``run`` id."""
    from harness import registry

    name = config.registry.model_name
    rows = {r["version"]: r for r in registry.list_versions(config)}  # opens the store the registry's way
    if str(version) not in rows:
        known = ", ".join(rows) or "none yet"
        raise HarnessError(f"{name} has no version {version} (versions: {known})",
                           hint="see 'harness registry list'; a version exists once 'harness promote' registered it")
    row = dict(rows[str(version)])
    with _mlflow(f"{name} v{version}"):
        mv = _client().get_model_version(name, str(version))
        row["mlflow_run_id"] = mv.run_id
        run_id = None
        if mv.run_id:
            mlflow_run = _client().get_run(mv.run_id)
            if mlflow_run.info.lifecycle_stage == "deleted":
                raise HarnessError(f"{name} v{version}: its MLflow run {mv.run_id} was deleted, so the card has "
                                   "nowhere to be stored with the version",
                                   hint=f"restore it in MLflow ('mlflow runs restore' with the run id {mv.run_id})")
            run_id = mlflow_run.data.params.get("run_id")
    if run_id in (None, "", "None"):
        try:
            decision, path = registry.find_decision(config, row["decision_id"])
            run_id = decision.get("run_id") or path.parent.parent.name
        except HarnessError:
            raise HarnessError(f"{name} v{version} (decision {row['decision_id']}): no run under {config.run.root} "
                               "holds its gate decision, and its MLflow run names no harness run",
                               hint="pass --config with the run.root the cycle used") from None
    run_cfg = config.model_copy(update={"run": config.run.model_copy(update={"id": run_id})})
    if not run_cfg.layout().dir.is_dir():
        raise HarnessError(f"{name} v{version} came from run '{run_id}', whose folder {run_cfg.layout().dir} is gone",
                           hint="restore the run folder (the card is built from its report), or pass --config "
                                "with the run.root it lives under")
    return run_cfg, row


@contextmanager
def _mlflow(what: str) -> Iterator[None]:
    """MLflow's errors (a run or version removed from the store, an unreachable store) as one HarnessError."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise HarnessError(f"{what}: MLflow refused: {exc.message}",
                           hint="check the tracking store (MLFLOW_TRACKING_URI) still holds the version and its run "
                                "('harness registry list'); a permanently deleted run cannot hold the card") from None


def _audit_doc(config: CycleConfig, decision_id: str, champion: bool) -> tuple[dict[str, Any], Path]:
    """The run's audit.json, written (and the log says why) when missing, unreadable, about another decision,
    or disagreeing with the registry on whether the version is the champion."""
    from reports import audit
    from reports.schema import AuditReport

    path = config.layout().report / "audit.json"
    doc = None
    if path.is_file():
        try:
            doc = artifact_dict(path, AuditReport)
        except HarnessError as exc:  # older or damaged: the report is rebuilt from the run's artifacts
            _log.warn(f"{path}: {exc.message}")
    status = doc["decision"]["status"] if doc else ""
    why = ("there is none yet" if not path.is_file() else "the one there could not be read" if doc is None
           else f"the one there describes decision {doc['decision']['decision_id']}"
           if doc["decision"]["decision_id"] != decision_id
           else "the one there calls the version the champion, which the registry no longer does"
           if status == "promoted" and not champion
           else f"the one there says '{status}', but the registry has the version as champion again"
           if status.startswith("promoted,") and champion else None)
    if why:
        _log.info(f"writing the audit report of run '{config.run.id}' ({why})")
        path = audit.run(config).json
        doc = artifact_dict(path, AuditReport)
    if doc["decision"]["decision_id"] != decision_id:
        raise HarnessError(f"run '{config.run.id}' now holds gate decision {doc['decision']['decision_id']}, not "
                           f"{decision_id}: its report describes another candidate",
                           hint="the run was gated again after the promotion; restore its gate/decision.json")
    return doc, path


def run(config: CycleConfig, version: str, output: Path | None = None,
        located: tuple[CycleConfig, dict[str, Any]] | None = None) -> CardResult:
    """Write the model card of registered ``version`` and store it with the version in MLflow (``located``:
    what :func:`locate` already returned for it)."""
    run_cfg, row = located or locate(config, version)
    doc, _ = _audit_doc(run_cfg, row["decision_id"], bool(row.get("champion")))
    return _write(run_cfg, doc, row, output)


def for_report(config: CycleConfig, doc: dict[str, Any]) -> CardResult | None:
    """The report stage's card: written when the audit report ``doc`` says the candidate was promoted."""
    if not doc["decision"]["status"].startswith("promoted"):
        return None
    version = str(doc["decision"]["promoted"]["subject"]["version"])
    _, row = locate(config, version)
    return _write(config, doc, row, None)


def _write(config: CycleConfig, doc: dict[str, Any], row: dict[str, Any], output: Path | None) -> CardResult:
    name, version = config.registry.model_name, row["version"]
    card = build_card(doc, name, version, run_dir=config.layout().dir)
    path = atomic_write_text(Path(output or config.layout().report / "model_card") / "README.md", str(card))
    uri = None
    if row.get("mlflow_run_id"):
        client = _client()
        with _mlflow(f"storing the card of {name} v{version} in MLflow run {row['mlflow_run_id']}"):
            client.log_artifact(row["mlflow_run_id"], str(path), artifact_path=ARTIFACT_PATH)
            uri = f"runs:/{row['mlflow_run_id']}/{ARTIFACT_PATH}/README.md"
            client.set_model_version_tag(name, version, TAG, uri)
            client.set_model_version_tag(name, version, f"{TAG}_sha256", sha256_file(path))
    _log.done(f"model card of {name} v{version}: {path}" + (f" (stored with the version: {uri})" if uri else ""))
    return CardResult(path, name, version, uri)


# --- the card's content -----------------------------------------------------------------------------

def _ref(ref: str | None, run_dir: Path) -> str:
    """A model or file reference as the audit report shows paths (reports.evidence.shown)."""
    from reports.evidence import shown

    return (shown(ref, run_dir) if ref else None) or "n/a"


def eval_results(doc: dict[str, Any]):
    """The candidate's results as ``EvalResult`` rows: task text-generation, dataset = suite, metric, estimate."""
    from huggingface_hub import EvalResult

    cand = _evaluated(doc, "candidate") or {"suites": {}}
    out = []
    for suite, s in sorted(cand["suites"].items()):
        for metric, m in sorted(s["metrics"].items()):
            if not _finite(m.get("estimate")):
                continue  # undefined on this sample (shown in the card's table, not in the model-index)
            out.append(EvalResult(task_type=TASK, task_name=suite.split("/")[0], dataset_type=suite,
                                  dataset_name=f"{suite} v{s.get('suite_version')}", metric_type=metric,
                                  metric_value=m["estimate"], metric_name=f"{metric}: {_ci(m)}"))
    return out


def _methods(doc: dict[str, Any]) -> list[str]:
    names = {"sft": "SFT", "reward": "reward model", "dpo": "DPO", "online": "online RL"}
    stages = doc["lineage"]["stages"]
    return [f"{names.get(s, s)} ({st['method']})" if st.get("method") else names.get(s, s)
            for s in ("sft", "reward", "dpo", "online") if (st := stages.get(s))]


def _md_table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _body(doc: dict[str, Any], name: str, version: str, run_dir: Path) -> str:
    dec, lin, rev = doc["decision"], doc["lineage"], doc.get("reviewers")
    cand = _evaluated(doc, "candidate") or {"suites": {}}
    others = {role: e for role in ("incumbent", "sft_candidate", "base") if (e := _evaluated(doc, role))}
    parts = [f"# {name} v{version}", ""]
    if dec.get("simulated_reviews"):
        parts += ["> **Reviews were simulated** (scripted reviewers, not people).", ""]
    parts += [dec["plain"], "",
              "## Model", "",
              f"- Base model: `{lin['base']}`",
              f"- This version: `{_ref(lin['candidate']['ref'], run_dir)}` (fingerprint `{lin['candidate']['fingerprint']}`)",
              f"- Compared with (incumbent): `{_ref(lin['incumbent']['ref'], run_dir)}`",
              f"- Method: {' -> '.join(_methods(doc)) or 'not recorded in this run'}",
              f"- Run: `{doc.get('run_id')}`, seed {doc['environment']['seed']}", ""]
    if lin["stages"]:
        parts += [_md_table(["stage", "method", "started from", "finished"],
                            [[s, st.get("method") or "", _ref(st.get("started_from"), run_dir), st.get("finished") or ""]
                             for s, st in lin["stages"].items()]), ""]
    parts += ["## Training data", ""]
    counts = (doc.get("data_card") or {}).get("counts")
    if counts:
        parts += [f"{counts['read']} records read, {counts['dropped']} dropped ({counts.get('contaminated', 0)} "
                  f"holding an evaluation item), {counts['train']} for training, {counts['validation']} for "
                  f"validation, {counts.get('replay_added', 0)} replayed.", ""]
        if counts.get("per_domain"):
            keys = sorted({k for d in counts["per_domain"].values() for k in d})
            parts += [_md_table(["domain", *keys], [[d, *[v.get(k, "") for k in keys]]
                                                    for d, v in sorted(counts["per_domain"].items())]), ""]
    else:
        parts += ["No data card in this run.", ""]
    parts += ["## Evaluation", "", "Estimates with 95% confidence intervals and n.", ""]
    rows = []
    for suite, s in sorted(cand["suites"].items()):
        for metric, m in sorted(s["metrics"].items()):
            rows.append([suite, metric, _ci(m), *[_ci(o["suites"].get(suite, {}).get("metrics", {}).get(metric))
                                                  for o in others.values()]])
    head = ["suite", "metric", "this version", *[r.replace("_", " ") for r in others]]
    parts += [_md_table(head, rows) if rows else "No results.", ""]
    parts += ["### Bias", ""]
    bias = {suite: s for suite, s in cand["suites"].items() if suite.startswith("bias/")}
    if not bias:
        parts += ["No bias suite was evaluated.", ""]
    for suite, s in sorted(bias.items()):
        parts += [f"**{suite}** (v{s.get('suite_version')}): "
                  + "; ".join(f"{k} {_ci(m)}" for k, m in sorted(s["metrics"].items())), ""]
        if s.get("by_category"):
            keys = sorted({k for c in s["by_category"].values() for k in c})
            parts += [_md_table(["category", *keys], [[c, *[_num((v.get(k) or {}).get("estimate")) for k in keys]]
                                                      for c, v in sorted(s["by_category"].items())]), ""]
    parts += ["## Reviewers", ""]
    if rev:
        summ, agr = rev.get("summary") or {}, rev.get("agreement") or {}
        parts += [f"- Simulated reviews: {'yes' if summ.get('simulated') else 'no'}",
                  f"- Win rate vs the incumbent: {_ci(summ.get('win_rate'))}",
                  f"- Unsafe rate: {_ci(summ.get('unsafe_rate'))}",
                  f"- Tasks reviewed: {summ.get('tasks_reviewed')}, annotations: {summ.get('annotations')}",
                  f"- Agreement: Krippendorff's alpha {_num(agr.get('krippendorff_alpha_preference_nominal'))} "
                  f"(preference), Fleiss' kappa {_num(agr.get('fleiss_kappa'))}, "
                  f"{len(agr.get('annotators') or []) or 'unknown number of'} reviewers"]
        if rev.get("alignment"):
            parts.append(f"- Win rate vs the SFT-only model (held-out prompts): {_ci(rev['alignment'].get('win_rate'))}")
        parts.append("")
    else:
        parts += ["No review round in this run.", ""]
    pol = dec["policy"]
    parts += ["## Gate decision", "",
              f"- Decision `{dec['decision_id']}` ({dec['decided']}): {dec['outcome']}, {dec['status']}",
              f"- Policy: {pol['name']} v{pol['version']} (sha256 `{str(pol.get('sha256') or '')[:12]}`)",
              f"- Approver: {dec.get('approver') or 'none'} (sign-off required: {'yes' if dec['signoff_required'] else 'no'})",
              "", _md_table(["rule", "requirement", "passed"],
                            [[r["id"], r["requirement"], "yes" if r["passed"] else "no"] for r in doc["rules"]]), "",
              "## Limitations", "", *[f"- {x}" for x in limitations(doc)], "",
              "## Intended use", ""]
    domains = sorted(s for s in cand["suites"] if s.startswith("domain/"))
    parts += [("Assistant answers in the domain measured by " + ", ".join(domains) if domains else
               "Research on the alignment pipeline that produced it")
              + ", with people reviewing its outputs. Not measured, and so not intended, for other domains or for "
                "decisions about people without human review. Read the limitations above first.", "",
              f"*Written by `harness card` from the run's audit report (`<run>/report/audit.json`, {doc['created']}).*", ""]
    return "\n".join(parts)


def build_card(doc: dict[str, Any], name: str, version: str, *, run_dir: Path):
    """The ``ModelCard`` of ``name`` v``version`` from the audit report ``doc``."""
    from huggingface_hub import ModelCard, ModelCardData

    base = doc["lineage"]["base"]
    hub_base = base if (base.count("/") == 1 and ":" not in base and not base.startswith((".", "/", "~"))) else None
    inputs = (doc.get("data_card") or {}).get("inputs") or []
    datasets = sorted({i["hub"] for i in inputs if isinstance(i.get("hub"), str)}) or None
    stage_tags = [s for s in ("sft", "dpo", "online") if s in doc["lineage"]["stages"]]
    data = ModelCardData(
        base_model=hub_base, datasets=datasets, pipeline_tag=TASK, model_name=f"{name} v{version}",
        eval_results=eval_results(doc) or None, tags=["harness", "rlhf", *stage_tags],
        harness={"model": name, "version": str(version), "run_id": doc.get("run_id"), "base": base,
                 "decision_id": doc["decision"]["decision_id"], "status": doc["decision"]["status"],
                 "policy": f"{doc['decision']['policy']['name']} v{doc['decision']['policy']['version']}",
                 "approver": doc["decision"].get("approver"),
                 "simulated_reviews": bool(doc["decision"].get("simulated_reviews"))})
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{_body(doc, name, version, run_dir)}")
