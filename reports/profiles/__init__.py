"""Regulatory mapping profiles: where the evidence for each item of a regulation or framework is in a run's
audit report, and which items the run holds no evidence for.

A profile is data: ``reports/profiles/<name>.yaml`` (shipped: ``eu-ai-act``, EU AI Act Annex IV;
``nist-ai-600-1``, the NIST Generative AI profile), or a team's own copy passed as a path. Each item has an
id, a title and the audit.json paths that evidence it, each with what it shows; an item with no evidence has
a note saying who must provide it. Paths are dotted keys (``decision.policy``); ``*`` stands for every entry
of a list or every key of a mapping, and a key with ``*`` matches keys by pattern
(``evaluation.*.suites.bias/*``). Every path is checked against the audit report's schema when the profile
is loaded, so a profile cannot cite a field the report does not have.

:func:`section` turns a profile and an audit document into the report's section: per item ``evidenced``
(every cited path holds a value in this run), ``partial`` (some do, or the item asks for more than a run can
hold: ``scope: partial``, or what is there falls short: a ledger that fails verification, reviews that were
simulated; the item's note says which) or ``missing`` (none do, or the profile cites nothing), with the paths
present and a short value where one helps. A flag that says no (``signoff_required: false``) is no evidence.
"""

from __future__ import annotations

import functools
import hashlib
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from harness.errors import HarnessError

__all__ = ["Profile", "ProfileItem", "ProfileEvidence", "ProfileSection", "ProfileItemResult", "ProfileEvidenceResult",
           "STATUSES", "shipped", "load", "section", "schema_problem", "resolve"]

HERE = Path(__file__).resolve().parent
STATUSES = ("evidenced", "partial", "missing")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the profile file --------------------------------------------------------------------------------------


class ProfileEvidence(_Strict):
    path: str = Field(min_length=1, description="Where in audit.json: dotted keys; '*' for every list entry or key, "
                                                "a key with '*' matches keys by pattern (evaluation.*.suites.bias/*).")
    shows: str = Field(min_length=1, description="What this evidence shows for the item, in a few words.")

    @field_validator("path")
    @classmethod
    def _in_schema(cls, value: str) -> str:
        problem = schema_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class ProfileItem(_Strict):
    id: str = Field(min_length=1, description="The item's id in the regulation or framework (2(g), MS-2.3-002).")
    title: str = Field(min_length=1, description="What the item asks for, in short.")
    evidence: list[ProfileEvidence] = Field(
        default_factory=list, description="Where this run's evidence is; empty when a run cannot hold any.")
    scope: Literal["full", "partial"] = Field(
        "full", description="partial: a run holds only part of what the item asks (the note says what else is "
                            "needed), so the item is at best 'partial'.")
    note: str | None = Field(None, description="Who must provide what the run does not hold.")

    @model_validator(mode="after")
    def _explained(self):
        if not self.evidence and not self.note:
            raise ValueError("an item without evidence needs a note saying who must provide it")
        if self.scope == "partial" and not self.note:
            raise ValueError("an item with scope: partial needs a note saying what else is needed")
        return self


class Profile(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Short name (the shipped ones: the file's name).")
    title: str = Field(min_length=1, description="The regulation or framework, as the report's heading says it.")
    version: int = Field(ge=1, description="The profile's own version: raise it when the mapping changes.")
    source: str = Field(min_length=1, description="The text the items come from (title, date, where to read it).")
    description: str | None = Field(None, description="What the profile covers and what it does not.")
    items: list[ProfileItem] = Field(min_length=1)

    _sha256: str = PrivateAttr("")
    _file: str = PrivateAttr("")
    _shipped: bool = PrivateAttr(False)

    @model_validator(mode="after")
    def _unique_ids(self):
        seen: set[str] = set()
        dupes = [i.id for i in self.items if i.id in seen or seen.add(i.id)]
        if dupes:
            raise ValueError(f"item ids must be unique; repeated: {', '.join(dupes)}")
        return self


# --- the report's section (stored in audit.json) -------------------------------------------------------------


class ProfileEvidenceResult(_Strict):
    path: str
    shows: str
    present: bool = Field(description="The path holds a value in this run's report.")
    value: str | None = Field(None, description="A short rendering of what is there (a name, an estimate, a count).")


class ProfileItemResult(_Strict):
    id: str
    title: str
    status: Literal["evidenced", "partial", "missing"]
    evidence: list[ProfileEvidenceResult]
    note: str | None = None


class ProfileSection(_Strict):
    """One regulatory mapping profile applied to this report (``--profile``, ``cycle.report_profiles``)."""

    name: str
    title: str
    version: int
    source: str
    description: str | None = None
    file: str = Field(description="The profile file: reports/profiles/NAME.yaml when shipped, else its file name.")
    shipped: bool
    sha256: str = Field(description="SHA-256 of the profile file, so an edited copy is told apart.")
    counts: dict[str, int] = Field(description="Items per status: evidenced, partial, missing.")
    items: list[ProfileItemResult]


# --- loading -----------------------------------------------------------------------------------------------


def shipped() -> list[str]:
    """Names of the profiles that ship with the harness."""
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def _is_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or "/" in ref or "\\" in ref


def load(ref: str) -> Profile:
    """A shipped profile by name, or a profile file by path; a clear error naming the file and key otherwise."""
    from harness.yamlcheck import compose_checked, format_errors

    if _is_path(ref):
        path, is_shipped = Path(ref).expanduser(), False
        if not path.is_file():
            raise HarnessError(f"profile file {ref} does not exist",
                               hint=f"give a profile YAML file, or a shipped profile: {', '.join(shipped())}")
    else:
        path, is_shipped = HERE / f"{ref}.yaml", True
        if not path.is_file():
            raise HarnessError(f"unknown profile '{ref}'",
                               hint=f"use one of: {', '.join(shipped())}; or the path to a profile YAML file "
                                    "(copy one of reports/profiles/*.yaml and edit it)")
    text = path.read_text(encoding="utf-8")
    data, lines = compose_checked(text, str(path))
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: a profile is a mapping with name, title, version, source and items",
                           hint="copy one of reports/profiles/*.yaml and edit it")
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise HarnessError(f"profile file {path} is not valid:\n{format_errors(exc, str(path), lines)}",
                           hint="fix the keys named above; the shipped profiles (reports/profiles/*.yaml) are examples"
                           ) from None
    profile._sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    profile._file = f"reports/profiles/{path.name}" if is_shipped else path.name
    profile._shipped = is_shipped
    return profile


# --- paths: against the schema, and in a report ------------------------------------------------------------


def _is_pattern(part: str) -> bool:
    return any(c in part for c in "*?[")


@functools.cache
def _report_schema() -> dict[str, Any]:
    from reports.schema import AuditReport

    return AuditReport.model_json_schema()


def _branches(node: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """A schema node with $ref resolved and anyOf/oneOf/allOf spread out (null branches dropped)."""
    if "$ref" in node:
        return _branches(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return [b for sub in node[key] for b in _branches(sub, defs)]
    return [] if node.get("type") == "null" else [node]


def schema_problem(path: str) -> str | None:
    """Why ``path`` cannot be in any audit.json (a key the schema does not have, a list indexed by name), or None.

    Below a field the schema leaves open (``dict[str, Any]``) any key is accepted: the schema cannot say more.
    """
    schema = _report_schema()
    defs = schema.get("$defs", {})
    nodes, walked = [schema], []
    for part in path.split("."):
        if not part:
            return f"'{path}' has an empty key"
        nxt, keys = [], set()
        for node in (b for n in nodes for b in _branches(n, defs)):
            props, extra = node.get("properties"), node.get("additionalProperties")
            if node.get("type") == "array":
                if part == "*" or part.isdigit():
                    nxt.append(node.get("items", {}))
                else:
                    keys.add("* (a list: every entry)")
                continue
            if props is None and extra is None and "type" not in node:
                return None  # Any: whatever is below cannot be checked
            matched = [v for k, v in (props or {}).items() if k == part or (_is_pattern(part) and fnmatchcase(k, part))]
            keys.update(props or {})
            nxt += matched
            if not matched and extra not in (None, False):
                if extra is True or extra == {}:
                    return None  # an open mapping: any key, anything below
                nxt.append(extra)
        if not nxt:
            where = ".".join(walked) or "the top level"
            listed = f" (it has: {', '.join(sorted(keys))})" if keys else ""
            return f"'{path}' is not in the audit report: no '{part}' at {where}{listed}"
        nodes = nxt
        walked.append(part)
    return None


def resolve(doc: Any, path: str) -> list[tuple[str, Any]]:
    """Every (concrete path, value) that ``path`` reaches in ``doc``; a pattern key may reach several."""
    found: list[tuple[str, Any]] = [("", doc)]
    for part in path.split("."):
        nxt = []
        for where, node in found:
            if isinstance(node, dict):
                if part in node:
                    nxt.append((f"{where}.{part}", node[part]))
                elif _is_pattern(part):
                    nxt += [(f"{where}.{k}", v) for k, v in node.items() if fnmatchcase(str(k), part)]
            elif isinstance(node, list):
                if part == "*":
                    nxt += [(f"{where}.{i}", v) for i, v in enumerate(node)]
                elif part.isdigit() and int(part) < len(node):
                    nxt.append((f"{where}.{part}", node[int(part)]))
        found = nxt
    return [(where.lstrip("."), value) for where, value in found]


def _has_value(value: Any) -> bool:
    """Holds something: not None, not blank, not False (a flag saying "no", e.g. ``signoff_required: false``,
    evidences nothing), not a mapping or list of nothing but these."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, dict):
        return any(_has_value(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_value(v) for v in value)
    return True


def _num(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return _num(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return f"{len(value)} entr{'y' if len(value) == 1 else 'ies'}"
    if "estimate" in value:
        ci = f" [{_num(value['ci_low'])}, {_num(value['ci_high'])}]" if value.get("ci_low") is not None else ""
        return f"{_num(value['estimate'])}{ci}" + (f", n {value['n']}" if value.get("n") is not None else "")
    if "name" in value and "version" in value:
        return f"{value['name']} v{value['version']}"
    if "fingerprint" in value:
        return f"fingerprint {value['fingerprint']}"
    if "ok" in value and "entries" in value:
        return f"{'verifies' if value['ok'] else 'FAILS verification'}, {value['entries']} entries"
    keys = [k for k, v in value.items() if _has_value(v)]
    return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")


def _value(found: list[tuple[str, Any]]) -> str | None:
    held = [(where, v) for where, v in found if _has_value(v)]
    if not held:
        return None
    if len(held) == 1:
        text = _short(held[0][1])
    else:
        names = list(dict.fromkeys(where.rsplit(".", 1)[-1] for where, _ in held))
        text = f"{len(held)} found: " + ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
    return text if len(text) <= 120 else text[:119] + "…"


def _caveats(doc: dict[str, Any], item: ProfileItem) -> list[str]:
    """Why evidence that is present falls short of the item: a ledger that fails verification is no record of
    changes; simulated reviews are no human oversight or feedback. Each caps the item at 'partial'."""
    paths = [e.path for e in item.evidence]
    out = []
    if any(p == "ledger" or p.startswith("ledger.") for p in paths) and (doc.get("ledger") or {}).get("ok") is False:
        out.append("The ledger fails verification ('harness ledger verify' says why): its record cannot be trusted.")
    simulated = (doc.get("decision") or {}).get("simulated_reviews") or \
        (((doc.get("reviewers") or {}).get("summary") or {}).get("simulated") is True)
    if simulated and any(p == "reviewers" or p.startswith("reviewers.") for p in paths):
        out.append("Reviews were simulated (scripted reviewers, not people): the reviewer figures are no human "
                   "oversight or feedback.")
    return out


def section(doc: dict[str, Any], profile: Profile | str) -> dict[str, Any]:
    """The report's section for ``profile`` (a :class:`Profile`, a shipped name or a path) over ``doc``."""
    if isinstance(profile, str):
        profile = load(profile)
    items = []
    for item in profile.items:
        evidence = []
        for e in item.evidence:
            found = resolve(doc, e.path)
            present = any(_has_value(v) for _, v in found)
            evidence.append({"path": e.path, "shows": e.shows, "present": present,
                             "value": _value(found) if present else None})
        held = sum(e["present"] for e in evidence)
        caveats = _caveats(doc, item) if held else []
        status = ("missing" if not held else
                  "partial" if held < len(evidence) or item.scope == "partial" or caveats else "evidenced")
        note = " ".join([*caveats, *([item.note] if item.note else [])]) or None
        items.append({"id": item.id, "title": item.title, "status": status, "evidence": evidence, "note": note})
    out = {"name": profile.name, "title": profile.title, "version": profile.version, "source": profile.source,
           "description": profile.description, "file": profile._file or f"{profile.name}.yaml",
           "shipped": profile._shipped, "sha256": profile._sha256,
           "counts": {s: sum(i["status"] == s for i in items) for s in STATUSES}, "items": items}
    return ProfileSection.model_validate(out).model_dump(mode="json")
