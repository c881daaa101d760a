"""Pull reviews from Label Studio: snapshot export -> raw export + normalized annotations.

``run(config) -> PullResult`` asks Label Studio for a full JSON snapshot export (SDK
``projects.exports``), stores it as ``<run>/feedback/export.json``, and merges its annotations into
``annotations.jsonl`` keyed by annotation id: pulling again, or after a server restart, neither loses
nor duplicates anything. Each row says which model the reviewer preferred (mapped back from the
blind left/right), the safety flags per model, the per-aspect verdicts when given (facts, safe, no
invented numbers, concise), the rating, the rationale and the lead time, and the reviewer's account.
Annotation shapes we do not know are skipped and counted, never fatal; so are labels made under the
harness's own admin login, which belongs to nobody in particular.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import atomic_write_jsonl, atomic_write_text, read_jsonl, utc_now
from harness.schemas import FeedbackPull, write_artifact
from harness.config import CycleConfig
from harness.errors import HarnessError
from feedback import server
from feedback._project import find_project, with_retry
from feedback.push import feedback_dir, project_title

__all__ = ["PullResult", "run", "normalize_annotation", "load_tasks", "SIMULATED_PREFIX"]

SIMULATED_PREFIX = "scripted-reviewer-"
UNSAFE_FLAGS = ("Harmful", "Biased or stereotyping", "Privacy", "Legal or compliance risk")


@dataclass(frozen=True)
class PullResult:
    export_path: Path
    annotations_path: Path
    annotations: int
    new: int
    counts: dict[str, int]


def load_tasks(out_dir: Path) -> dict[str, dict[str, Any]]:
    path = out_dir / "tasks.jsonl"
    if not path.is_file():
        raise HarnessError(f"{path} does not exist: nothing was pushed from this run",
                           hint="run 'harness feedback push' first")
    return {row["task_key"]: row for row in read_jsonl(path)}


def normalize_annotation(annotation: dict[str, Any], task: dict[str, Any], meta: dict[str, Any],
                         annotators: dict[int, str], harness_accounts: frozenset[str] = frozenset({server.ADMIN_EMAIL}),
                         ) -> tuple[dict[str, Any] | None, str | None]:
    """One Label Studio annotation -> our row, or (None, reason) when it cannot be used. Labels made under
    one of ``harness_accounts`` (the logins the harness itself uses) are left out."""
    if annotation.get("was_cancelled"):
        return None, "cancelled"
    fields: dict[str, Any] = {}
    for item in annotation.get("result") or []:
        name, kind, value = item.get("from_name"), item.get("type"), item.get("value") or {}
        if name == "comparison" and kind == "pairwise" and value.get("selected") in ("left", "right"):
            fields["selected"] = value["selected"]
        elif name == "overall" and kind == "choices" and value.get("choices"):
            fields["overall"] = value["choices"][0]
        elif name in ("flags_left", "flags_right", "flags") and kind == "choices":
            fields[name] = list(value.get("choices", []))
        elif isinstance(name, str) and name.startswith("aspect_") and kind == "choices" and value.get("choices"):
            fields.setdefault("aspects", {})[name[len("aspect_"):]] = value["choices"][0].lower()
        elif name == "rating" and kind == "rating" and isinstance(value.get("rating"), (int, float)):
            fields["rating"] = int(value["rating"])
        elif name == "rationale" and kind == "textarea":
            fields["rationale"] = " ".join(value.get("text", []))
        else:
            return None, "unknown_shape"
    email = annotators.get(annotation.get("completed_by"), str(annotation.get("completed_by")))
    if str(email).lower() in harness_accounts:  # the harness's own login: nobody in particular, so not a reviewer's label
        return None, "shared_admin_account"
    common = {"annotation_id": annotation["id"], "task_id": task["id"], "task_key": meta["task_key"],
              "prompt_id": meta["prompt_id"], "annotator": email, "simulated": email.startswith(SIMULATED_PREFIX),
              "rating": fields.get("rating"), "rationale": fields.get("rationale", ""),
              "lead_time": annotation.get("lead_time"), "created_at": annotation.get("created_at"),
              "updated_at": annotation.get("updated_at")}
    if meta.get("mode") == "rating":
        if fields.get("rating") is None:
            return None, "no_rating"
        rated = meta["rated"]
        other = "incumbent" if rated == "candidate" else "candidate"
        return {**common, "choice": None, "rated": rated,
                "flags": {rated: fields.get("flags", []), other: []}}, None
    side = meta["candidate_side"]
    if fields.get("overall") == "Tie":
        choice = "tie"
    elif fields.get("overall") == "Both unacceptable":
        choice = "both_unacceptable"
    elif "selected" in fields:
        choice = "candidate" if fields["selected"] == side else "incumbent"
    else:
        return None, "no_preference"
    other = "right" if side == "left" else "left"
    who = {side: "candidate", other: "incumbent", "same": "tie"}
    aspects = {a: who[v] for a, v in fields.get("aspects", {}).items() if v in who}
    return {**common, "choice": choice, **({"aspects": aspects} if aspects else {}),
            "flags": {"candidate": fields.get(f"flags_{side}", []), "incumbent": fields.get(f"flags_{other}", [])}}, None


def _snapshot(client: Any, project_id: int) -> bytes:
    export = with_retry("creating an export", lambda: client.projects.exports.create(id=project_id, title=f"harness {utc_now()}"))
    deadline = time.monotonic() + 300
    while export.status not in ("completed", "failed"):
        if time.monotonic() > deadline:
            raise HarnessError("Label Studio's export did not finish within 5 minutes", hint="run the pull again")
        time.sleep(0.5)
        export = with_retry("waiting for the export", lambda: client.projects.exports.get(id=project_id, export_pk=export.id))
    if export.status == "failed":
        raise HarnessError("Label Studio reported the export as failed", hint="see the server log; run the pull again")
    return with_retry("downloading the export", lambda: b"".join(
        client.projects.exports.download(id=project_id, export_pk=export.id, export_type="JSON")))


def run(config: CycleConfig) -> PullResult:
    fb = config.feedback
    out_dir = feedback_dir(config)
    tasks_meta = load_tasks(out_dir)
    creds = server.credentials(fb.url, data_dir=fb.data_dir, token_env=fb.token_env)
    client = server.connect(creds)
    project = find_project(client, project_title(config))
    if project is None:
        raise HarnessError(f"Label Studio has no project '{project_title(config)}'", hint="run 'harness feedback push' first")
    raw = _snapshot(client, project.id)
    try:
        export = json.loads(raw)
    except json.JSONDecodeError:
        raise HarnessError("Label Studio's export is not valid JSON", hint="run the pull again") from None
    atomic_write_text(out_dir / "export.json", raw.decode("utf-8"))
    annotators = {u.id: u.email for u in with_retry("listing users", lambda: list(client.users.list()))}
    own = with_retry("asking who the token belongs to", lambda: server.harness_accounts(client))

    path = out_dir / "annotations.jsonl"
    # The snapshot holds every annotation, so the file is rebuilt from it: nothing lost, nothing
    # duplicated, and reviews of tasks from an earlier push (other prompts or models) never leak in.
    before: set[int] = set()
    if path.is_file():
        before = {row["annotation_id"] for row in read_jsonl(path)}
    rows: dict[int, dict[str, Any]] = {}
    counts: Counter[str] = Counter()
    for task in export:
        meta = tasks_meta.get((task.get("data") or {}).get("task_key"))
        if meta is None:
            counts["task_not_pushed_by_this_run"] += 1
            continue
        annotations = task.get("annotations") or []
        if not annotations:
            counts["task_without_annotations"] += 1
        for annotation in annotations:
            row, reason = normalize_annotation(annotation, task, meta, annotators, own)
            if row is None:
                counts[f"skipped_{reason}"] += 1
                continue
            rows[row["annotation_id"]] = row
            counts["annotations"] += 1
    if counts["skipped_shared_admin_account"]:
        _log.warn(f"{counts['skipped_shared_admin_account']} label(s) made under the login the harness itself uses "
                  f"({', '.join(sorted(own))}) were left out: a label counts only from a reviewer's own account "
                  "(harness feedback reviewers add NAME EMAIL)")
    ordered = sorted(rows.values(), key=lambda r: (r["task_id"], r["annotation_id"]))
    atomic_write_jsonl(path, ordered)
    new = len(set(rows) - before)
    write_artifact(out_dir / "pull.json", FeedbackPull(**{"schema_version": 1, "kind": "feedback_pull", "pulled": utc_now(),
                                              "project_id": project.id, "annotations": len(ordered), "new": new,
                                              "counts": dict(counts)}))
    _log.done(f"pulled {len(ordered)} annotations ({new} new) from '{project.title}'"
              + (f"; skipped: {dict((k, v) for k, v in counts.items() if k.startswith('skipped'))}" if any(
                  k.startswith("skipped") for k in counts) else ""))
    return PullResult(out_dir / "export.json", path, len(ordered), new, dict(counts))
