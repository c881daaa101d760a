"""The model registry on MLflow: versions of promoted models and the ``champion`` alias.

The alias moves only through :func:`promote` (a passing gate decision, plus a named approver where the
policy requires a sign-off) and :func:`rollback`; each move is written to the ledger. A registered
version carries the adapter (logged as run artifacts), the base model reference, the fingerprint and
the decision id. Default store: SQLite under ``$HARNESS_HOME/mlflow``; ``MLFLOW_TRACKING_URI`` points
the harness at another server.

Crash safety: the registry is changed first and the ledger second. If a crash falls in between, the
next registry command finds the champion alias pointing at a version the ledger has no record of,
and records the move in the ledger as a ``repair`` (the version carries its decision id, so what
happened is known) before doing anything else.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import ledger, log as _log
from harness.schemas import GateDecision, artifact_dict
from harness.config import CycleConfig
from harness.errors import EXIT_ERROR, HarnessError

__all__ = ["tracking_uri", "promote", "rollback", "list_versions", "show_version", "champion", "champion_ref",
           "champion_fingerprint", "champion_stack", "is_promoted", "check_consistency", "find_decision", "PromoteResult"]

ALIAS = "champion"


def tracking_uri() -> str:
    from harness.models import harness_home

    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    folder = harness_home() / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def _client():
    import logging

    import mlflow
    from mlflow import MlflowClient

    logging.getLogger("alembic").setLevel(logging.WARNING)  # schema migrations on first use are not news
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if not uri.startswith("sqlite:///") or uri in _OPENED:
        return MlflowClient(uri, uri)
    # The first use of a local store creates its tables; processes doing that at once collide ("table already
    # exists"), so this process's first client is made, and each store first touched, under the registry's lock.
    with _registry_lock():
        client = MlflowClient(uri, uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    _OPENED.add(uri)
    return client


_OPENED: set[str] = set()  # local stores this process has opened (their tables exist)


def _experiment(client, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):  # artifacts beside the database, not in the working directory
        location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def _model_exists(client, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return True
    except MlflowException:
        return False


def champion(client, name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    if not _model_exists(client, name):
        return None
    try:
        return client.get_model_version_by_alias(name, ALIAS)
    except MlflowException:
        return None


def champion_stack(name: str, entries: list[dict[str, Any]] | None = None) -> list[str]:
    """The ledger's (or ``entries``') champion history for ``name`` as a stack: promotions (and repairs, which
    record an interrupted promotion) push a version; a rollback pops back to the version it restored."""
    stack: list[str] = []
    for e in ledger.read_entries(ledger.default_path()) if entries is None else entries:
        if e["subject"].get("model") != name:
            continue
        version = str(e["subject"].get("version"))
        if e["action"] in ("promote", "repair"):
            stack.append(version)
        elif e["action"] == "rollback":
            while stack and stack[-1] != version:
                stack.pop()
    return stack


def _ledger_champion(name: str) -> str | None:
    stack = champion_stack(name)
    return stack[-1] if stack else None


def _promoted_decisions() -> set[str]:
    out = set()
    for e in ledger.read_entries(ledger.default_path()):
        if e["action"] == "promote":
            out.add(e["subject"].get("decision_id"))
        elif e["action"] == "repair":
            out.add(e["subject"].get("decision_id") or e["details"].get("decision_id"))
    return out


def is_promoted(decision_id: str) -> bool:
    """Has the ledger recorded this decision's promotion (by the cycle or by hand)?"""
    return decision_id in _promoted_decisions()


def _current_champion(config: CycleConfig) -> Any | None:
    """The champion's model version, or None before the first promotion. Without a champion in the
    ledger, MLflow is not touched."""
    name = config.registry.model_name
    if _ledger_champion(name) is None:
        return None
    client = _client()
    check_consistency(client, name)
    return champion(client, name)


def champion_fingerprint(config: CycleConfig) -> tuple[str, str] | None:
    """``(label, fingerprint)`` of the current champion (label like 'harness-model v2'), or None before
    the first promotion."""
    current = _current_champion(config)
    return None if current is None else (f"{current.name} v{current.version}", current.tags.get("fingerprint"))


def champion_ref(config: CycleConfig) -> str | None:
    """A model reference for the current champion (its adapter folder, or the registry's copy of it),
    or None when nothing was promoted yet."""
    current = _current_champion(config)
    if current is None:
        return None
    name = current.name
    from harness.models import fingerprint, harness_home, resolve

    ref = current.tags.get("candidate") or current.source
    if ref.startswith(("/", ".", "~")):  # a folder: use it only while it still holds the promoted weights
        if not Path(ref).exists() or fingerprint(resolve(ref)) != current.tags.get("fingerprint"):
            import mlflow

            dest = harness_home() / "registry" / name / str(current.version)
            if not dest.is_dir():
                import shutil

                tmp = dest.parent / f".{current.version}.tmp"
                dest.parent.mkdir(parents=True, exist_ok=True)
                Path(mlflow.artifacts.download_artifacts(artifact_uri=current.source, dst_path=str(tmp))).rename(dest)
                shutil.rmtree(tmp, ignore_errors=True)
            ref = str(dest)
    return ref


def _gated(decision_id: str) -> dict | None:
    """The ledger's record of a passing gate decision, or None."""
    return next((e for e in ledger.read_entries(ledger.default_path())
                 if e["action"] == "decision" and e["subject"].get("decision_id") == decision_id), None)


def check_consistency(client, name: str) -> None:
    """Registry and ledger must agree on the champion; a registry move the ledger missed is recorded.
    Under the registry lock: a check racing a promotion would otherwise record its move twice."""
    with _registry_lock():
        _check_consistency_locked(client, name)


def _check_consistency_locked(client, name: str) -> None:
    check = ledger.verify()
    if not check.ok:
        raise HarnessError(f"the ledger failed verification: {check.message}",
                           hint="restore the ledger from a backup; nothing in the registry was changed", exit_code=EXIT_ERROR)
    current = champion(client, name)
    in_registry = str(current.version) if current is not None else None
    in_ledger = _ledger_champion(name)
    if in_registry == in_ledger:
        return
    if current is not None and in_registry in champion_stack(name)[:-1]:  # an interrupted rollback
        ledger.append("rollback", actor="harness registry",
                      subject={"model": name, "version": in_registry, "decision_id": current.tags.get("decision_id")},
                      details={"reason": "the champion alias moved back without a ledger entry (interrupted "
                                         "rollback); recorded from the registry", "from_version": in_ledger})
        _log.warn(f"the ledger missed a rollback to {name} v{in_registry}; recorded it")
        return
    if current is not None and current.tags.get("decision_id") and _gated(current.tags["decision_id"]):
        ledger.append("repair", actor="harness registry",
                      subject={"model": name, "version": in_registry, "decision_id": current.tags.get("decision_id")},
                      details={"reason": "the champion alias moved without a ledger entry (interrupted command); "
                                         "recorded from the registry", "decision_id": current.tags.get("decision_id"),
                               "ledger_said": in_ledger})
        _log.warn(f"the ledger missed the last champion change ({name} v{in_registry}); recorded it as a repair")
        return
    raise HarnessError(f"the registry's champion ({in_registry}) and the ledger's ({in_ledger}) disagree, and the "
                       "registry's version is not a gated decision the ledger knows",
                       hint="the registry was changed outside the harness, or the ledger was lost; "
                            "inspect with 'harness registry list' and restore the ledger")


def find_decision(config: CycleConfig, decision_id: str) -> tuple[dict[str, Any], Path]:
    """A gate decision by id: in this run's gate folder, else in any run under run.root."""
    candidates = []
    if config.run.id is not None:
        candidates.append(config.layout().decision(decision_id))
    candidates += sorted(Path(config.run.root).glob(f"*/gate/{decision_id}.json"))
    for path in candidates:
        if path.is_file():
            return artifact_dict(path, GateDecision), path
    raise HarnessError(f"unknown decision '{decision_id}'",
                       hint="run 'harness gate' first; decision ids are printed and stored in runs/<id>/gate/")


@dataclass(frozen=True)
class PromoteResult:
    model: str
    version: str
    decision_id: str
    previous: str | None


def promote(config: CycleConfig, decision_id: str, approver: str | None) -> PromoteResult:
    """Register the decision's candidate and move the champion alias to it."""
    name = config.registry.model_name
    decision, path = find_decision(config, decision_id)
    if not decision.get("passed"):
        failed = [r["id"] for r in decision.get("rules", []) if not r.get("passed")]
        raise HarnessError(f"decision {decision_id} did not pass (failed: {', '.join(failed)}); nothing was promoted",
                           hint="fix the candidate and run the gate again")
    if decision.get("signoff_required") and not approver:
        raise HarnessError(f"the policy of decision {decision_id} requires a sign-off; nothing was promoted",
                           hint="pass --approver NAME (recorded in the registry and the ledger)")
    ledger.require_writable()
    with _registry_lock():
        return _promote_locked(config, name, decision, path, approver)


REGISTRY_LOCK_TIMEOUT = float(os.environ.get("HARNESS_REGISTRY_LOCK_TIMEOUT", "600"))  # a promotion uploads the model


def _registry_lock():
    """One registry writer at a time (promote, rollback, the consistency check and its repairs), across
    processes; re-entrant in one thread. Gives up after REGISTRY_LOCK_TIMEOUT seconds, naming the holder."""
    from harness._lock import file_lock

    lp = ledger.default_path()
    lp.parent.mkdir(parents=True, exist_ok=True)
    return file_lock(lp.with_name(lp.name + ".registry.lock"), timeout=REGISTRY_LOCK_TIMEOUT,
                     what="the model registry's lock", exit_code=EXIT_ERROR)


def _promote_locked(config: CycleConfig, name: str, decision: dict, path: Path, approver: str | None) -> PromoteResult:
    from harness.artifacts import sha256_file
    from harness.models import fingerprint, resolve
    from harness.multi_adapter import registry_tags

    decision_id = decision["decision_id"]
    client = _client()
    check_consistency(client, name)
    gated = _gated(decision_id)
    if gated is None:
        raise HarnessError(f"the ledger has no passing gate decision {decision_id}; nothing was promoted",
                           hint="only decisions made by 'harness gate' (and recorded in the ledger) can be promoted")
    if gated["details"].get("decision_sha256") not in (None, sha256_file(path)):
        raise HarnessError(f"{path} was changed after the gate recorded it; nothing was promoted",
                           hint="run 'harness gate' again")
    if decision_id in _promoted_decisions():
        raise HarnessError(f"decision {decision_id} was already promoted",
                           hint="a decision promotes once; run the gate again for a new one")
    cand = decision["candidate"]
    spec = resolve(cand["ref"])
    if fingerprint(spec) != cand["fingerprint"]:
        raise HarnessError(f"the candidate {cand['ref']} changed since decision {decision_id} (fingerprint "
                           f"{fingerprint(spec)}, gated {cand['fingerprint']}); nothing was promoted",
                           hint="evaluate and gate the model as it is now")
    previous = champion(client, name)
    if previous is not None and previous.tags.get("fingerprint") != decision["incumbent"]["fingerprint"]:
        raise HarnessError(f"decision {decision_id} compared the candidate with {decision['incumbent']['ref']} "
                           f"(fingerprint {decision['incumbent']['fingerprint']}), but the champion is {name} "
                           f"v{previous.version} (fingerprint {previous.tags.get('fingerprint')}); nothing was promoted",
                           hint="gate the candidate against the current champion (--incumbent)")
    import mlflow

    experiment_id = _experiment(client, config.registry.experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"promote {decision_id}") as run:
        mlflow.log_params({"decision_id": decision_id, "candidate": cand["ref"], "fingerprint": cand["fingerprint"],
                           "base": spec.base_spec.ref, "incumbent": decision["incumbent"]["ref"],
                           "policy": f"{decision['policy']['name']} v{decision['policy']['version']}",
                           "run_id": decision.get("run_id"), "approver": approver or ""})
        for rule in decision["rules"]:
            for i, check in enumerate(rule["checks"]):
                if isinstance(check.get("estimate"), (int, float)):
                    key = re.sub(r"[^A-Za-z0-9_\-./ ]", "_", f"{rule['id']}.{i}.estimate")  # MLflow's allowed characters
                    mlflow.log_metric(key, float(check["estimate"]))
        mlflow.log_artifact(str(path), artifact_path="gate")
        if spec.kind in ("adapter", "local", "multi-adapter", "reft"):  # a multi-adapter folder holds every domain's adapter
            mlflow.log_artifacts(spec.location, artifact_path="model")
            source = mlflow.get_artifact_uri("model")
        else:
            source = spec.location  # a hub id or built-in: the reference is the artifact
    if not _model_exists(client, name):
        client.create_registered_model(name, description="Models promoted by the harness gate.")
    version = client.create_model_version(name, source, run_id=run.info.run_id, tags={
        "decision_id": decision_id, "fingerprint": cand["fingerprint"], "candidate": cand["ref"],
        "base": spec.base_spec.ref, "approver": approver or "", "decision_sha256": sha256_file(path),
        **(registry_tags(spec) if spec.kind == "multi-adapter" else {})})  # each domain's adapter
    client.set_registered_model_alias(name, ALIAS, version.version)
    # The registry moved; now the ledger (a crash here is repaired by the next registry command).
    if approver:
        ledger.append("sign_off", actor=approver, subject={"decision_id": decision_id, "model": name,
                                                            "version": str(version.version)})
    ledger.append("promote", actor=approver or "harness promote",
                  subject={"decision_id": decision_id, "model": name, "version": str(version.version)},
                  details={"previous_champion": str(previous.version) if previous else None,
                           "fingerprint": cand["fingerprint"], "candidate": cand["ref"]})
    _log.done(f"{name} v{version.version} is the champion (decision {decision_id}"
              + (f", approved by {approver}" if approver else "") + ")")
    return PromoteResult(name, str(version.version), decision_id, str(previous.version) if previous else None)


def rollback(config: CycleConfig, approver: str | None, to_version: str | None = None) -> PromoteResult:
    """Move the champion back to the previous champion (per the ledger), or to ``to_version``."""
    name = config.registry.model_name
    ledger.require_writable()
    with _registry_lock():
        client = _client()
        check_consistency(client, name)
        current = champion(client, name)
        if current is None:
            raise HarnessError(f"{name} has no champion to roll back", hint="promote a decision first")
        earlier = champion_stack(name)[:-1]  # champions before the current one, most recent last
        if not earlier:
            raise HarnessError(f"{name} v{current.version} is the only champion left", hint="nothing to roll back to")
        if to_version is None:
            to_version = earlier[-1]
        elif str(to_version) not in earlier:
            raise HarnessError(f"{name} v{to_version} was not a champion before v{current.version}",
                               hint=f"roll back to one of: {', '.join(earlier)}")
        return _rollback_locked(client, name, current, str(to_version), approver)


def _rollback_locked(client, name: str, current, to_version: str, approver: str | None) -> PromoteResult:
    target = client.get_model_version(name, str(to_version))
    client.set_registered_model_alias(name, ALIAS, target.version)
    ledger.append("rollback", actor=approver or "harness registry rollback",
                  subject={"model": name, "version": str(target.version), "decision_id": target.tags.get("decision_id")},
                  details={"from_version": str(current.version)})
    _log.done(f"{name}: champion rolled back from v{current.version} to v{target.version}")
    return PromoteResult(name, str(target.version), target.tags.get("decision_id", ""), str(current.version))


def list_versions(config: CycleConfig) -> list[dict[str, Any]]:
    name = config.registry.model_name
    client = _client()
    if not _model_exists(client, name):
        return []
    champ = champion(client, name)
    rows = []
    for v in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)):
        rows.append({"version": str(v.version), "champion": champ is not None and str(champ.version) == str(v.version),
                     "decision_id": v.tags.get("decision_id"), "fingerprint": v.tags.get("fingerprint"),
                     "candidate": v.tags.get("candidate"), "base": v.tags.get("base"),
                     "approver": v.tags.get("approver"), "source": v.source, "created": v.creation_timestamp,
                     **({"adapters": v.tags["adapters"]} if v.tags.get("adapters") else {})})
    return rows


def show_version(config: CycleConfig, version: str) -> dict[str, Any]:
    rows = {r["version"]: r for r in list_versions(config)}
    if str(version) not in rows:
        raise HarnessError(f"{config.registry.model_name} has no version {version}",
                           hint="see 'harness registry list'")
    return rows[str(version)]
