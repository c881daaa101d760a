"""Preference data for the RLHF stages: validated pairs, unpaired thumbs-up/down, prompts, splits.

Rows follow TRL's conversational preference format, as ``feedback export`` writes them::

    {"prompt": [{"role": "user", "content": ...}], "chosen": [{"role": "assistant", ...}],
     "rejected": [{"role": "assistant", ...}], "provenance": {...}}

A plain-text form (``"prompt": "..."``, ``"chosen": "..."``) is accepted and converted. Every row is
checked before any training starts; the first bad row is reported with its file and line. Rows holding
an evaluation item are dropped and counted (or refused) as the data stage does (:func:`decontaminate`):
a preference file handed to a stage directly is checked like the feedback stage's own.
Held-out splits are made per prompt (all pairs of one prompt fall on the same side), stratified by
the prompt's category where the provenance has one, and ordered by a hash of the prompt text and the
seed, so a given set of pairs always splits the same way, whatever its row order.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from harness.artifacts import iter_jsonl
from harness.errors import HarnessError

__all__ = ["load_pairs", "load_unpaired", "unpair", "split_by_prompt", "load_prompts", "prompt_key",
           "render_conversation", "completion_text", "decontaminate", "decontamination_key"]

_ROLES = ("system", "user", "assistant")


def _messages(value: Any, default_role: str, where: str, key: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        value = [{"role": default_role, "content": value}]
    if not isinstance(value, list) or not value:
        raise HarnessError(f"{where}: '{key}' must be a non-empty list of chat messages or a string",
                           hint='e.g. "prompt": [{"role": "user", "content": "..."}]')
    out = []
    for m in value:
        if not isinstance(m, dict) or set(m) - {"role", "content"} or m.get("role") not in _ROLES \
                or not isinstance(m.get("content"), str):
            raise HarnessError(f"{where}: '{key}' holds {m!r}, not a chat message",
                               hint='each message is {"role": "system|user|assistant", "content": "text"}')
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _check_prompt(prompt: list[dict[str, str]], where: str) -> None:
    if prompt[-1]["role"] != "user":
        raise HarnessError(f"{where}: the prompt must end with a user message (it ends with '{prompt[-1]['role']}')",
                           hint="the prompt is the conversation up to the turn being judged")


def _check_response(resp: list[dict[str, str]], where: str, key: str) -> None:
    if [m["role"] for m in resp] != ["assistant"] or not resp[0]["content"].strip():
        raise HarnessError(f"{where}: '{key}' must be exactly one non-empty assistant message",
                           hint='e.g. "chosen": [{"role": "assistant", "content": "..."}]')


def _texts(row: Any) -> list[str]:
    """Every message of a pair, an unpaired row, or a prompt (a list of messages)."""
    if isinstance(row, list):
        return [m["content"] for m in row]
    return [m["content"] for key in ("prompt", "chosen", "rejected", "completion") for m in row.get(key) or []]


def decontaminate(rows: list[Any], config: Any, what: str) -> tuple[list[Any], int]:
    """``rows`` without those holding an item of an evaluated suite (:mod:`harness.decontam`), and how many
    went; with ``data.decontaminate: fail`` such rows stop the stage instead (exit 2), with ``off`` none is
    checked."""
    from harness import log as _log
    from harness.decontam import index_for, refusal

    index = index_for(config)
    if index is None:
        return rows, 0
    kept, found = index.partition(rows, _texts)
    if found and config.data.decontaminate == "fail":
        raise refusal([(_source(row), why) for row, why in found], what,
                      hint="remove them from the file, or set data.decontaminate: drop to drop and count them")
    if found:
        _log.warn(f"decontamination: {len(found)} of {len(rows)} {what} hold an item of the evaluation suites and were "
                  f"left out (first: {_source(found[0][0])}: {found[0][1]})")
    return kept, len(found)


def decontamination_key(config: Any) -> str:
    """What :func:`decontaminate` checks against, for a stage's fingerprint: another suite or setting may
    drop other rows."""
    from harness.artifacts import stable_hash
    from harness.decontam import checked_suites

    return stable_hash({"suites": checked_suites(config), "mode": config.data.decontaminate,
                        "ngram": config.data.decontaminate_ngram})


def _source(row: Any) -> str:
    provenance = row.get("provenance") if isinstance(row, dict) else None
    return str((provenance or {}).get("source") or (provenance or {}).get("prompt_id") or "a row")


def load_pairs(path: Path) -> list[dict[str, Any]]:
    """Validated preference pairs from a JSONL file (``prompt``, ``chosen``, ``rejected``)."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"preference file {path} does not exist",
                           hint="run 'harness feedback export' (or set the stage's 'preferences' to your own JSONL)")
    rows = []
    for where, row in iter_jsonl(path):
        if not isinstance(row, dict):
            raise HarnessError(f"{where}: expected a JSON object with prompt, chosen and rejected")
        missing = [k for k in ("prompt", "chosen", "rejected") if row.get(k) in (None, "", [])]
        if missing:
            raise HarnessError(f"{where}: preference row has no {' or '.join(missing)}",
                               hint="each row needs prompt, chosen and rejected")
        prompt = _messages(row["prompt"], "user", where, "prompt")
        _check_prompt(prompt, where)
        chosen = _messages(row["chosen"], "assistant", where, "chosen")
        rejected = _messages(row["rejected"], "assistant", where, "rejected")
        _check_response(chosen, where, "chosen")
        _check_response(rejected, where, "rejected")
        if chosen[0]["content"].strip() == rejected[0]["content"].strip():
            raise HarnessError(f"{where}: chosen and rejected are the same response, so the pair teaches nothing",
                               hint="drop the row (ties carry no preference)")
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected,
                     "provenance": row.get("provenance") or {"source": where}})
    if not rows:
        raise HarnessError(f"preference file {path} is empty: there is nothing to learn from",
                           hint="collect reviews first (harness feedback pull / export)")
    return rows


def load_unpaired(path: Path) -> list[dict[str, Any]]:
    """Validated unpaired rows (``prompt``, ``completion``, boolean ``label``) for KTO."""
    rows = []
    for where, row in iter_jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("label"), bool):
            raise HarnessError(f"{where}: expected prompt, completion and a true/false label",
                               hint='e.g. {"prompt": [...], "completion": [...], "label": true}')
        prompt = _messages(row.get("prompt"), "user", where, "prompt")
        _check_prompt(prompt, where)
        completion = _messages(row.get("completion"), "assistant", where, "completion")
        _check_response(completion, where, "completion")
        rows.append({"prompt": prompt, "completion": completion, "label": row["label"],
                     "provenance": row.get("provenance") or {"source": where}})
    if not rows:
        raise HarnessError(f"unpaired feedback file {path} is empty", hint="collect ratings first, or use objective: dpo")
    if len({r["label"] for r in rows}) < 2:
        raise HarnessError(f"{path} holds only {'desirable' if rows[0]['label'] else 'undesirable'} examples",
                           hint="KTO needs both thumbs-up and thumbs-down examples")
    return rows


def unpair(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Split each pair into a desirable and an undesirable example (TRL's unpair_preference_dataset)."""
    out = []
    for p in pairs:
        out.append({"prompt": p["prompt"], "completion": p["chosen"], "label": True, "provenance": p["provenance"]})
        out.append({"prompt": p["prompt"], "completion": p["rejected"], "label": False, "provenance": p["provenance"]})
    return out


def prompt_key(prompt: list[dict[str, str]]) -> str:
    return "\n".join(f"{m['role']}:{m['content']}" for m in prompt)


def _prompt_groups(rows: list[dict[str, Any]], seed: int) -> dict[str, list[str]]:
    """Distinct prompt keys by ``provenance.category`` (empty without one), each list in a seeded order."""
    category: dict[str, str] = {}
    for r in rows:
        category.setdefault(prompt_key(r["prompt"]), str((r.get("provenance") or {}).get("category") or ""))
    rank = lambda k: hashlib.sha256(f"{seed}|{k}".encode()).hexdigest()  # noqa: E731
    groups: dict[str, list[str]] = {}
    for key in sorted(category, key=rank):
        groups.setdefault(category[key], []).append(key)
    return groups


def split_by_prompt(rows: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """``(train, held_out)``: about ``fraction`` of the distinct prompts are held out (at least one, never all),
    stratified by ``provenance.category`` when rows carry one, so a held-out set is not all of one kind."""
    groups = _prompt_groups(rows, seed)
    category = {k: c for c, keys in groups.items() for k in keys}
    if fraction <= 0 or len(category) < 2:
        return rows, []
    # Largest-remainder allocation: the held-out total is round(fraction x prompts), shared across
    # categories in proportion to their size, so small categories are represented too.
    total = min(len(category) - 1, max(1, int(fraction * len(category) + 0.5)))
    quota = {c: fraction * len(keys) for c, keys in groups.items()}
    take = {c: int(q) for c, q in quota.items()}
    for c in sorted(groups, key=lambda c: (-(quota[c] - take[c]), c))[:max(0, total - sum(take.values()))]:
        take[c] += 1
    held = {k for c, keys in groups.items() for k in keys[:take[c]]}
    return ([r for r in rows if prompt_key(r["prompt"]) not in held],
            [r for r in rows if prompt_key(r["prompt"]) in held])


def folds_by_prompt(rows: list[dict[str, Any]], k: int, seed: int, what: str = "reward.cross_fit_folds") -> list[list[dict]]:
    """``k`` disjoint folds of ``rows`` (every row in exactly one) with no prompt in two folds, dealt
    round-robin within each ``provenance.category`` in a seeded order, so folds differ in size by at
    most one prompt per category and each holds every kind. Fewer distinct prompts than ``k``: an error."""
    groups = _prompt_groups(rows, seed)
    n = sum(map(len, groups.values()))
    if n < k:
        raise HarnessError(f"{what}={k} needs at least {k} distinct prompts; the preference pairs have {n}",
                           hint=f"lower {what} (or set it to 0 for one held-out split), or collect pairs on more prompts")
    fold_of, i = {}, 0
    for c in sorted(groups):
        for key in groups[c]:
            fold_of[key] = i % k
            i += 1
    folds: list[list[dict]] = [[] for _ in range(k)]
    for r in rows:
        folds[fold_of[prompt_key(r["prompt"])]].append(r)
    return folds


def load_prompts(path: Path) -> list[list[dict[str, str]]]:
    """Prompts for online RL: JSONL rows with ``prompt`` (text or chat messages ending with a user turn)."""
    out, seen = [], set()
    for where, row in iter_jsonl(path):
        if not isinstance(row, dict) or "prompt" not in row:
            raise HarnessError(f"{where}: expected a JSON object with 'prompt'")
        prompt = _messages(row["prompt"], "user", where, "prompt")
        _check_prompt(prompt, where)
        key = prompt_key(prompt)
        if key not in seen:
            seen.add(key)
            out.append(prompt)
    if not out:
        raise HarnessError(f"prompt file {path} is empty", hint="add JSONL rows with a 'prompt'")
    return out


def render_conversation(tokenizer: Any, prompt: list[dict[str, str]], response: str) -> str:
    """Prompt + response as the text a reward model scores: the chat template where the tokenizer has
    one, else plain ``role: content`` lines (encoders such as MiniLM have no chat template)."""
    messages = [*prompt, {"role": "assistant", "content": response}]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False)
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def completion_text(content: Any) -> str:
    """A completion as TRL passes it (a string, or a list of chat messages) -> its assistant text."""
    if isinstance(content, str):
        return content
    return "".join(m.get("content", "") for m in content if m.get("role", "assistant") == "assistant")
