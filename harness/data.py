"""Data preparation: read, normalize to chat messages, dedupe, mix replay, split, document.

``run(cfg)`` reads every source (JSONL, JSON, CSV, Parquet, or a hub dataset), accepts four record
shapes (chat ``messages``, ``prompt``/``completion``, alpaca ``instruction``/``input``/``output``,
plain ``text``) and writes ``train.jsonl``, ``validation.jsonl`` and ``data_card.json`` into one
folder, atomically. Malformed input stops the stage with its file and line; cleaning (duplicates,
near-duplicates, over-long records, and rows holding an item of an evaluated suite: see
:mod:`harness.decontam`, ``data.decontaminate``) drops records and records why in the data card.
"""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import (
    ARTIFACT_VERSION, atomic_write_jsonl, read_jsonl, sha256_bytes, sha256_file,
    stable_hash, staged_dir, update_manifest, utc_now,
)
from harness.schemas import DataCard, artifact_dict, write_artifact
from harness.config import CycleConfig, DataConfig, DataSource
from harness.errors import HarnessError
from harness.datasources import CONVERT_HINT, ROLES, normalize_record, read_records, source_name
from harness.decontam import checked_suites, index_for, refusal
from harness import augment

__all__ = ["DataResult", "run", "read_records", "normalize_record", "ROLES", "load_prepared"]



@dataclass(frozen=True)
class DataResult:
    output_dir: Path
    train_path: Path
    validation_path: Path
    card_path: Path
    counts: dict[str, Any]
    up_to_date: bool = False  # True when an identical earlier preparation was reused


@dataclass
class _Record:
    messages: list[dict[str, str]]
    domain: str
    where: str  # file:line
    shape: str


_WS = re.compile(r"\s+")


def _normalized_text(messages: list[dict[str, str]]) -> str:
    return "\n".join(f"{m['role']}: {_WS.sub(' ', m['content']).strip().lower()}" for m in messages)


def _load_source(src: DataSource, domain: str) -> tuple[list[_Record], dict[str, Any]]:
    records: list[_Record] = []
    shapes: Counter[str] = Counter()
    for where, raw in read_records(src):
        try:
            messages, shape = normalize_record(raw, src.format)
        except ValueError as exc:
            raise HarnessError(str(exc), where=where, hint=CONVERT_HINT) from None
        shapes[shape] += 1
        records.append(_Record(messages, domain, where, shape))
    info: dict[str, Any] = {"source": source_name(src), "domain": domain, "records_read": len(records),
                            "shapes": dict(shapes)}
    if src.path is not None:
        info["sha256"] = sha256_file(src.path)
    else:
        info["hub"] = {"id": src.hub, "subset": src.subset, "split": src.split, "revision": src.revision}
    return records, info


# --------------------------------------------------------------------------------- cleaning


def _dedupe(records: list[_Record], cfg: DataConfig, drops: list[dict[str, Any]]) -> list[_Record]:
    kept: list[_Record] = []
    seen_exact: dict[str, str] = {}
    lsh = minhashes = None
    if cfg.dedupe.near:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=cfg.dedupe.threshold, num_perm=cfg.dedupe.num_perm)
        minhashes = {}
    for i, rec in enumerate(records):
        text = _normalized_text(rec.messages)
        if cfg.max_chars is not None and len(text) > cfg.max_chars:
            drops.append({"where": rec.where, "reason": "too_long", "detail": f"{len(text)} > {cfg.max_chars} chars"})
            continue
        if cfg.dedupe.exact:
            h = sha256_bytes(text.encode())
            if h in seen_exact:
                drops.append({"where": rec.where, "reason": "exact_duplicate", "detail": f"same as {seen_exact[h]}"})
                continue
            seen_exact[h] = rec.where
        if lsh is not None:
            words = text.split()
            n = cfg.dedupe.shingle_words
            shingles = {" ".join(words[j:j + n]).encode() for j in range(max(1, len(words) - n + 1))}
            mh = MinHash(num_perm=cfg.dedupe.num_perm, seed=1)
            mh.update_batch(list(shingles))
            match = next((k for k in lsh.query(mh) if minhashes[k].jaccard(mh) >= cfg.dedupe.threshold), None)
            if match is not None:
                drops.append({"where": rec.where, "reason": "near_duplicate",
                              "detail": f"~{minhashes[match].jaccard(mh):.2f} similar to {records[match].where}"})
                continue
            lsh.insert(i, mh)
            minhashes[i] = mh
        kept.append(rec)
    return kept


def _decontaminate(records: list[_Record], config: CycleConfig, drops: list[dict[str, Any]]) -> tuple[list[_Record], int]:
    """Drop (or, with data.decontaminate: fail, refuse) rows holding an evaluation item; see harness.decontam."""
    index = index_for(config)
    kept, found = index.partition(records, lambda rec: [m["content"] for m in rec.messages])
    if found and config.data.decontaminate == "fail":
        raise refusal([(rec.where, why) for rec, why in found], "training rows",
                      hint="remove them from the data, or set data.decontaminate: drop to drop and count them")
    drops += [{"where": rec.where, "reason": "contaminated", "detail": why} for rec, why in found]
    _log.info(f"decontamination: {len(found)} of {len(records)} rows hold an item of {len(index.suites)} evaluation "
              f"suites ({index.documents} documents) and were dropped" if found else
              f"decontamination: no row holds an item of the {len(index.suites)} evaluation suites ({index.documents} documents)")
    return kept, len(found)


def _length_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"n": 0}

    def summary(values: list[int]) -> dict[str, float]:
        values = sorted(values)
        return {"min": values[0], "mean": round(statistics.fmean(values), 1), "p50": values[len(values) // 2],
                "p90": values[min(len(values) - 1, int(0.9 * len(values)))], "max": values[-1]}

    chars = [sum(len(m["content"]) for m in r["messages"]) for r in rows]
    words = [sum(len(m["content"].split()) for m in r["messages"]) for r in rows]
    turns = [len(r["messages"]) for r in rows]
    return {"n": len(rows), "chars": summary(chars), "words": summary(words), "messages": summary(turns)}


def _row(rec: _Record) -> dict[str, Any]:
    return {"id": sha256_bytes(_normalized_text(rec.messages).encode())[:16], "domain": rec.domain,
            "source": rec.where, "messages": rec.messages}


# ------------------------------------------------------------------------------------- run


def _fingerprint(cfg: DataConfig, seed: int, inputs: list[dict[str, Any]], against: dict[str, int],
                 augmented: dict[str, Any]) -> str:
    settings = cfg.model_dump(mode="json", exclude={"output_dir"} if augmented else {"output_dir", "augment"})
    for section in [*settings["sources"], settings["replay"] or {}]:
        section.pop("path", None)  # identified by content hash below, not by where it sits
    return stable_hash({"settings": settings, "seed": seed,
                        "inputs": [(i.get("sha256") or i.get("hub"), i["domain"]) for i in inputs],
                        **({"decontaminate_against": against} if against else {}),
                        **({"augment": augmented} if augmented else {})})


def load_prepared(folder: str | Path) -> tuple[list[dict], list[dict], dict]:
    """Read a prepared data folder: ``(train_rows, validation_rows, data_card)``."""
    folder = Path(folder)
    card_path = folder / "data_card.json"
    if not card_path.is_file():
        raise HarnessError(f"{folder} is not a prepared data folder (no data_card.json)",
                           hint="prepare it first: harness data prepare --config FILE  (or --input FILE --output DIR)")
    return read_jsonl(folder / "train.jsonl"), read_jsonl(folder / "validation.jsonl"), artifact_dict(card_path, DataCard)


def run(config: CycleConfig, *, force: bool = False) -> DataResult:
    """Prepare the data described by ``config.data``; see the module docstring."""
    cfg = config.data
    seed = config.run.seed
    if not cfg.sources:
        raise HarnessError("data.sources is empty: nothing to prepare",
                           hint="add at least one source, e.g. data.sources: [{path: train.jsonl, domain: support}]")
    out = cfg.output_dir if cfg.output_dir is not None else config.layout().data
    augment.check(config)

    all_records: list[_Record] = []
    inputs: list[dict[str, Any]] = []
    for src in cfg.sources:
        recs, info = _load_source(src, src.domain)
        _log.info(f"read {len(recs)} records from {info['source']} (domain '{src.domain}')")
        all_records += recs
        inputs.append(info)
    replay_records: list[_Record] = []
    if cfg.replay is not None:
        replay_records, info = _load_source(cfg.replay, cfg.replay.domain)
        _log.info(f"read {len(replay_records)} replay records from {info['source']}")
        inputs.append({**info, "replay_ratio": cfg.replay.ratio})

    against = checked_suites(config)
    fingerprint = _fingerprint(cfg, seed, inputs, against, augment.fingerprint_inputs(config))
    card_path = out / "data_card.json"
    if out.exists() and any(out.iterdir()):
        if not card_path.is_file():
            raise HarnessError(f"output folder {out} is not empty and holds no data card",
                               hint="choose an empty folder (data.output_dir / --output)")
        old = artifact_dict(card_path, DataCard)
        if old.get("fingerprint") == fingerprint and not force:
            _log.done(f"data in {out} is up to date (same inputs and settings)")
            return DataResult(out, out / "train.jsonl", out / "validation.jsonl", card_path, old["counts"], True)
        if old.get("fingerprint") != fingerprint and not force:
            raise HarnessError(
                f"output folder {out} already holds data prepared from other inputs or settings",
                hint="use another run.id / --output, or pass --force to replace it",
            )

    drops: list[dict[str, Any]] = []
    kept = _dedupe(all_records + replay_records, cfg, drops)
    contaminated = 0
    if against:
        kept, contaminated = _decontaminate(kept, config, drops)
    domain_records: dict[str, list[_Record]] = defaultdict(list)
    kept_replay: list[_Record] = []
    replay_wheres = {r.where for r in replay_records}
    for rec in kept:
        (kept_replay if rec.where in replay_wheres else domain_records[rec.domain]).append(rec)
    if not domain_records:
        raise HarnessError(
            f"no records left after cleaning ({len(all_records)} read, {len(drops)} dropped: "
            + ", ".join(f"{k} {v}" for k, v in Counter(d["reason"] for d in drops).items()) + ")",
            hint="check data.dedupe.threshold and data.max_chars, or the input files",
        )

    rng = random.Random(seed)
    train: list[dict[str, Any]] = []
    validation: list[dict[str, Any]] = []
    per_domain: dict[str, dict[str, int]] = {}
    for domain in sorted(domain_records):
        recs = list(domain_records[domain])
        rng.shuffle(recs)
        n_val = max(cfg.min_validation, round(cfg.validation_fraction * len(recs)))
        if len(recs) - n_val < 1:
            raise HarnessError(
                f"domain '{domain}' has {len(recs)} record(s) after cleaning: too few to split into train and validation",
                hint="add data for this domain or lower data.min_validation",
            )
        validation += [_row(r) for r in recs[:n_val]]
        train += [_row(r) for r in recs[n_val:]]
        read = sum(1 for r in all_records if r.domain == domain)
        per_domain[domain] = {"read": read, "kept": len(recs), "train": len(recs) - n_val, "validation": n_val}

    # Paraphrases of training rows only (validation and replay stay as they are). Replay is sized on the rows
    # before paraphrasing, so runs with and without paraphrases train on the same replay rows.
    own_rows = len(train)
    paraphrases, augmentation = augment.paraphrase_rows(config, train, validation + [_row(r) for r in kept_replay])
    if paraphrases:
        for row in paraphrases:
            per_domain[row["domain"]]["paraphrases"] = per_domain[row["domain"]].get("paraphrases", 0) + 1
        train += paraphrases
        random.Random(f"{seed}:augment").shuffle(train)  # own RNG: the split and replay draw as without it

    replay_added = 0
    replay_note = None
    if cfg.replay is not None:
        wanted = round(cfg.replay.ratio / (1 - cfg.replay.ratio) * own_rows)
        rng.shuffle(kept_replay)
        chosen = kept_replay[:wanted]
        replay_added = len(chosen)
        if replay_added < wanted:
            replay_note = f"replay set has {len(kept_replay)} usable records; {wanted} wanted for ratio {cfg.replay.ratio}"
            _log.warn(replay_note)
        train += [_row(r) for r in chosen]
        rng.shuffle(train)

    counts = {
        "read": len(all_records) + len(replay_records), "dropped": len(drops),
        "train": len(train), "validation": len(validation), "replay_added": replay_added,
        "contaminated": contaminated, "augmented": len(paraphrases), "per_domain": per_domain,
    }
    card: dict[str, Any] = {
        "schema_version": ARTIFACT_VERSION, "kind": "data_card", "status": "complete", "created": utc_now(),
        "fingerprint": fingerprint, "seed": seed, "settings": cfg.model_dump(mode="json"),
        "inputs": inputs, "counts": counts, "decontaminated_against": against,
        "drop_summary": dict(Counter(d["reason"] for d in drops)), "drops": drops,
        "lengths": {"train": _length_stats(train), "validation": _length_stats(validation)},
        "notes": [replay_note] if replay_note else [], "augmentation": augmentation,
    }
    with staged_dir(out) as tmp:
        atomic_write_jsonl(tmp / "train.jsonl", train)
        atomic_write_jsonl(tmp / "validation.jsonl", validation)
        card["outputs"] = {name: sha256_file(tmp / name) for name in ("train.jsonl", "validation.jsonl")}
        write_artifact(tmp / "data_card.json", card, DataCard)
    if cfg.output_dir is None:
        update_manifest(config.run_dir(), "data", {
            "config": cfg.model_dump(mode="json"), "seed": seed, "fingerprint": fingerprint,
            "inputs": inputs, "outputs": card["outputs"],
        })
    _log.done(f"prepared {len(train)} training and {len(validation)} validation records in {out} "
              f"({len(drops)} dropped; replay added: {replay_added}"
              + (f"; paraphrases added: {len(paraphrases)})" if augmentation else ")"))
    return DataResult(out, out / "train.jsonl", out / "validation.jsonl", out / "data_card.json", counts)
