"""Training-set augmentation (``data.augment``): paraphrased copies of training prompts with the same answer.

Beside replay, paraphrases are the seed's guard against forgetting: the model learns the answers from more
than one wording of the question, rather than one string. :func:`paraphrase_rows` runs after the
train/validation split on the *training* rows of the domains only: a paraphrase of a validation prompt in
training would leak it, and replay rows are someone else's data kept as they are.

* ``method: template`` (no model): each record gets ``n`` distinct question frames ("Could you tell me:
  ...", "Quick question - ...", "... Thanks!"), picked by an RNG seeded with the seed and the record's id
  (the same record always gets the same rewrites, whatever else is in the data), with the first letter's
  case and a trailing "?"/"." varied where the frame allows.
* ``method: model``: a local chat model (``paraphrase.model``, default ``model.base``) is asked to rewrite
  each prompt (:func:`harness.generate.sample_responses`, ``n`` samples per prompt); its output is cleaned
  (quotes, "Sure! Here is..." prefixes) and rejected when empty or over 3x the original's length.

Only the first user turn is rewritten (the prompt; later turns answer earlier replies). A paraphrase is
dropped when its chat normalizes to the same text as its original, another paraphrase or any prepared record
(exact, as ``data.dedupe.exact``; near-duplicate detection would drop every paraphrase by design), and when it
holds an evaluation item (:mod:`harness.decontam`): always dropped and counted, never a failure, as the
rewrite is ours, not the user's data. Kept rows carry ``"augmented": "paraphrase"`` and ``"augmented_from"``
(the source row's id); the data card's ``augmentation`` entry counts what was generated, kept and dropped.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

from harness import log as _log
from harness.config_sections import ParaphraseConfig
from harness.errors import HarnessError

__all__ = ["FRAMES", "INSTRUCTION", "active", "check", "fingerprint_inputs", "template_paraphrases",
           "clean_rewrite", "paraphrase_rows"]

# (frame, whether the prompt's first letter may be lower-cased after it, whether its "?"/"." may go)
FRAMES: tuple[tuple[str, bool, bool], ...] = (
    ("Could you tell me: {p}", True, False),
    ("I'd like to know: {p}", True, False),
    ("Quick question - {p}", True, True),
    ("Please answer the following: {p}", True, False),
    ("Here is my question. {p}", False, True),
    ("Hi! {p}", False, False),
    ("Hello, {p}", True, False),
    ("{p} Thanks!", False, False),
    ("{p}\n\nThank you.", False, False),
    ("Can you help me with this? {p}", False, False),
    ("I need some help. {p}", False, True),
    ("Question: {p}", False, True),
    ("{p} Could you help?", False, False),
)
INSTRUCTION = ("Rewrite this question in other words, keeping its meaning. Reply with the rewritten question only."
               "\n\n{question}")
MAX_GROWTH = 3  # a rewrite over 3x the original's length is an answer or rambling, not a paraphrase

_WS = re.compile(r"\s+")
_CAPITALIZED = re.compile(r"^[A-Z][a-z]+\b")  # "Which", not "I", "NASA" or "iPhone"
_PREFIXES = tuple(re.compile(p, re.IGNORECASE) for p in (  # peeled in this order: "Sure! Here it is: Question: ..."
    r"^(?:sure|okay|ok|certainly|of course)\b[!,.]*\s*",
    r"^(?:here(?:'s| is| it is)|this is)\b[^:\n]{0,60}:\s*",
    r"^(?:(?:rewritten|reworded|rephrased|paraphrased|new)\s+)?(?:question|version|paraphrase|rewrite)\s*:\s*",
))
_QUOTES = "\"'`“”‘’«»"


def active(data_cfg: Any) -> ParaphraseConfig | None:
    """The paraphrase settings when they add anything (``data.augment.paraphrase`` with ``n`` > 0), else None."""
    augment = getattr(data_cfg, "augment", None)
    para = augment.paraphrase if augment is not None else None
    return para if para is not None and para.n > 0 else None


def _model_ref(config: Any, para: ParaphraseConfig) -> tuple[str, str | None]:
    return (para.model, None) if para.model is not None else (config.model.base, config.model.revision)


def check(config: Any) -> None:
    """Refuse settings that cannot work, before anything is read or loaded."""
    para = active(config.data)
    if para is not None and para.method == "template" and para.n > len(FRAMES):
        raise HarnessError(f"data.augment.paraphrase.n is {para.n}, but method: template has {len(FRAMES)} distinct frames",
                           hint=f"lower n to at most {len(FRAMES)}, or use method: model")


def fingerprint_inputs(config: Any) -> dict[str, Any]:
    """What the paraphrases depend on beyond the data section (the rewriting model's weights); resolves
    the model, so a wrong reference stops the data stage before any work."""
    para = active(config.data)
    if para is None:
        return {}
    out: dict[str, Any] = {"seed": para.seed if para.seed is not None else config.run.seed}
    if para.method == "model":
        from harness.models import fingerprint, resolve

        ref, revision = _model_ref(config, para)
        spec = resolve(ref, revision=revision, trust_remote_code=config.model.trust_remote_code)
        out["model"] = {"ref": ref, "fingerprint": fingerprint(spec)}
    return out


# ------------------------------------------------------------------------------------ rewrites


def _first_user(messages: list[dict[str, str]]) -> int | None:
    return next((i for i, m in enumerate(messages) if m["role"] == "user"), None)


def template_paraphrases(prompt: str, n: int, rng: random.Random) -> list[str]:
    """``n`` rewrites of ``prompt``, each with its own frame (``n`` <= len(FRAMES))."""
    core = prompt.strip()
    out = []
    for k in rng.sample(range(len(FRAMES)), n):
        frame, may_lower, may_strip = FRAMES[k]
        text = core
        if may_lower and _CAPITALIZED.match(text) and rng.random() < 0.5:
            text = text[0].lower() + text[1:]
        if may_strip and text.endswith(("?", ".")) and "\n" not in text and rng.random() < 0.5:
            text = text[:-1]
        out.append(frame.format(p=text))
    return out


def clean_rewrite(text: str, original: str) -> tuple[str | None, str | None]:
    """``(rewrite, None)`` or ``(None, why rejected)`` for one model output."""
    text = text.strip()
    for prefix in _PREFIXES:
        text = prefix.sub("", text, count=1).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if not text:
        return None, "empty"
    if len(text) > MAX_GROWTH * max(len(original.strip()), 1):
        return None, "too_long"
    return text, None


def _model_paraphrases(config: Any, para: ParaphraseConfig, prompts: list[str], seed: int) -> list[list[str]]:
    from harness.generate import sample_responses
    from harness.models import inference_dtype, resolve

    ref, revision = _model_ref(config, para)
    spec = resolve(ref, revision=revision, trust_remote_code=config.model.trust_remote_code)
    _log.info(f"paraphrasing {len(prompts)} training prompts with {ref} ({para.n} each)")
    return sample_responses(spec, [INSTRUCTION.format(question=p) for p in prompts], samples=para.n,
                            temperature=para.temperature, seed=seed, max_new_tokens=para.max_new_tokens,
                            batch_size=para.batch_size, description="paraphrasing", dtype=inference_dtype("auto"))


# --------------------------------------------------------------------------------------- rows


def paraphrase_rows(config: Any, train: list[dict[str, Any]], others: list[dict[str, Any]]
                    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Paraphrased rows of the ``train`` rows (prepared rows: id, domain, source, messages) and the data
    card's ``augmentation`` entry; ``others``: every other prepared row (validation, replay), which a
    paraphrase may not duplicate. ``([], None)`` when augmentation is off."""
    from harness import data as _data  # the row shape and normalization are the data stage's
    from harness.decontam import index_for

    para = active(config.data)
    if para is None:
        return [], None
    seed = para.seed if para.seed is not None else config.run.seed
    sources = [(row, i) for row in train if (i := _first_user(row["messages"])) is not None]
    prompts = [row["messages"][i]["content"] for row, i in sources]
    if para.method == "template":
        candidates = [template_paraphrases(p, para.n, random.Random(f"{seed}:{row['id']}"))
                      for p, (row, _) in zip(prompts, sources)]
    else:
        candidates = _model_paraphrases(config, para, prompts, seed) if prompts else []

    seen = {_data._normalized_text(r["messages"]) for r in [*train, *others]}
    rejected: Counter[str] = Counter()
    duplicates = 0
    rows: list[dict[str, Any]] = []
    for (row, i), original, rewrites in zip(sources, prompts, candidates):
        for k, rewrite in enumerate(rewrites):
            text, why = clean_rewrite(rewrite, original) if para.method == "model" else (rewrite, None)
            if text is None:
                rejected[why or "rejected"] += 1
                continue
            messages = [dict(m) for m in row["messages"]]
            messages[i] = {**messages[i], "content": text}
            normalized = _data._normalized_text(messages)
            if config.data.max_chars is not None and len(normalized) > config.data.max_chars:
                rejected["too_long"] += 1
                continue
            if normalized in seen:
                duplicates += 1
                continue
            seen.add(normalized)
            rec = _data._Record(messages, row["domain"], f"{row['source']} (paraphrase {k + 1})", "messages")
            rows.append({**_data._row(rec), "augmented": "paraphrase", "augmented_from": row["id"]})

    contaminated = 0
    index = index_for(config)
    if index is not None and rows:
        rows, found = index.partition(rows, lambda r: [m["content"] for m in r["messages"]])
        contaminated = len(found)
    generated = sum(len(c) for c in candidates)
    entry = {
        "kind": "paraphrase", "method": para.method, "n": para.n, "seed": seed,
        "model": _model_ref(config, para)[0] if para.method == "model" else None,
        "records": len(sources), "skipped_no_prompt": len(train) - len(sources),
        "generated": generated, "kept": len(rows), "rejected": dict(rejected),
        "dropped_duplicates": duplicates, "dropped_contaminated": contaminated,
        "per_domain": dict(Counter(r["domain"] for r in rows)),
    }
    _log.info(f"paraphrases: {len(rows)} of {generated} kept for {len(sources)} training records "
              f"({duplicates} duplicates, {sum(rejected.values())} rejected, {contaminated} holding an evaluation item)")
    return rows, entry
