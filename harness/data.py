"""Data preparation: read, normalize to chat messages, dedupe, mix replay, split, document.

``run(cfg)`` reads every source (JSONL, JSON, CSV, Parquet, or a hub dataset), accepts four record
shapes (chat ``messages``, ``prompt``/``completion``, alpaca ``instruction``/``input``/``output``,
plain ``text``) and writes ``train.jsonl``, ``validation.jsonl`` and ``data_card.json`` into one
folder, atomically. Malformed input stops the stage with its file and line; cleaning (duplicates,
near-duplicates, over-long records) drops records and records why in the data card.
"""

from __future__ import annotations

import json
import random
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import log as _log
from harness.artifacts import (
    ARTIFACT_VERSION, atomic_write_jsonl, iter_jsonl, read_jsonl, sha256_bytes, sha256_file,
    stable_hash, staged_dir, update_manifest, utc_now,
)
from harness.schemas import DataCard, artifact_dict, write_artifact
from harness.config import CycleConfig, DataConfig, DataSource
from harness.errors import HarnessError

__all__ = ["DataResult", "run", "read_records", "normalize_record", "ROLES", "load_prepared"]

ROLES = ("system", "user", "assistant")
_SUFFIXES = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_CONVERT_HINT = "accepted shapes: {messages: [{role, content}]}, {prompt, completion}, {instruction, input, output}, {text}"


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


# ------------------------------------------------------------------------------------- reading


def _source_name(src: DataSource) -> str:
    return str(src.path) if src.path is not None else f"hub:{src.hub}" + (f"/{src.subset}" if src.subset else "")


def read_records(src: DataSource) -> Iterator[tuple[str, Any]]:
    """Yield ``(where, raw_record)`` for one source; ``where`` is ``file:line`` or ``hub:id row N``."""
    if src.hub is not None:
        yield from _read_hub(src)
        return
    path = Path(src.path)
    if not path.is_file():
        raise HarnessError(f"data file {path} does not exist", hint="check data.sources[].path (relative to the config file)")
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise HarnessError(f"{path}: unsupported file type '{path.suffix}'", hint="use .jsonl, .json, .csv or .parquet")
    count = 0
    for where, raw in _READERS[kind](path):
        yield where, raw
        count += 1
        if src.limit is not None and count >= src.limit:
            return


def _read_json(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"not valid JSON ({exc.msg})", where=f"{path}:{exc.lineno}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise HarnessError("a .json data file must hold a list of records", where=str(path),
                           hint="or use .jsonl with one record per line")
    for i, rec in enumerate(data):
        yield f"{path}[{i}]", rec


def _read_table(path: Path, frame) -> Iterator[tuple[str, Any]]:
    header_offset = 2 if path.suffix.lower() == ".csv" else 1  # CSV: line 1 is the header
    for i, row in enumerate(frame.to_dict(orient="records")):
        rec = {k: v for k, v in row.items() if not (isinstance(v, float) and v != v)}  # NaN -> absent
        if isinstance(rec.get("messages"), str) and rec["messages"].lstrip().startswith("["):
            try:
                rec["messages"] = json.loads(rec["messages"])
            except json.JSONDecodeError:
                pass  # reported as a bad 'messages' field below
        if hasattr(rec.get("messages"), "tolist"):  # parquet nested arrays
            rec["messages"] = [dict(m) for m in rec["messages"].tolist()]
        yield f"{path}:{i + header_offset}", rec


def _read_csv(path: Path) -> Iterator[tuple[str, Any]]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise HarnessError(f"cannot parse CSV: {exc}", where=str(path)) from None
    yield from _read_table(path, frame)


def _read_parquet(path: Path) -> Iterator[tuple[str, Any]]:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise HarnessError(f"cannot read Parquet file: {exc}", where=str(path)) from None
    yield from _read_table(path, frame)


_READERS = {"jsonl": iter_jsonl, "json": _read_json, "csv": _read_csv, "parquet": _read_parquet}


def _read_hub(src: DataSource) -> Iterator[tuple[str, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(src.hub, src.subset, split=src.split)
    except Exception as exc:  # network, missing dataset, bad split: all user-fixable
        raise HarnessError(
            f"could not load hub dataset '{src.hub}' (split {src.split}): {str(exc).splitlines()[0]}",
            hint="check the id/split and your network; offline, export it to .jsonl once and use data.sources[].path",
        ) from None
    for i, rec in enumerate(ds):
        if src.limit is not None and i >= src.limit:
            return
        yield f"hub:{src.hub} row {i}", rec


# ------------------------------------------------------------------------------ normalizing


def _detect_shape(rec: dict[str, Any]) -> str:
    if "messages" in rec:
        return "messages"
    if "prompt" in rec and "completion" in rec:
        return "prompt_completion"
    if "instruction" in rec and "output" in rec:
        return "alpaca"
    if "text" in rec:
        return "text"
    raise ValueError(f"record has none of the known fields (found: {', '.join(sorted(rec)) or 'none'})")


def _text_field(rec: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = rec.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError(f"'{key}' is missing or empty")
        return ""
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string, got {type(value).__name__}")
    return value


def _check_messages(messages: Any, key: str = "messages") -> list[dict[str, str]]:
    if not isinstance(messages, list):
        raise ValueError(f"'{key}' must be a list of {{role, content}}; got {type(messages).__name__}")
    if not messages:
        raise ValueError(f"'{key}' is empty")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"'{key}[{i}]' must be an object with 'role' and 'content'; got {json.dumps(m)[:80]}")
        role, content = m["role"], m["content"]
        if role not in ROLES:
            raise ValueError(f"'{key}[{i}].role' is '{role}'; expected one of {', '.join(ROLES)}")
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"'{key}[{i}].content' must be a non-empty string")
        out.append({"role": role, "content": content})
    return out


def normalize_record(rec: Any, fmt: str = "auto") -> tuple[list[dict[str, str]], str]:
    """Return ``(messages, shape)``; raise ``ValueError`` with a plain reason for bad records."""
    if not isinstance(rec, dict):
        raise ValueError(f"record must be a JSON object, got {type(rec).__name__}")
    shape = _detect_shape(rec) if fmt == "auto" else fmt
    if shape == "messages":
        messages = _check_messages(rec.get("messages"))
    elif shape == "prompt_completion":
        prompt, completion = rec.get("prompt"), rec.get("completion")
        if isinstance(prompt, list):
            messages = _check_messages(prompt, "prompt")
        else:
            messages = [{"role": "user", "content": _text_field(rec, "prompt")}]
        if isinstance(completion, list):
            messages += _check_messages(completion, "completion")
        else:
            messages.append({"role": "assistant", "content": _text_field(rec, "completion")})
    elif shape == "alpaca":
        instruction = _text_field(rec, "instruction")
        extra = _text_field(rec, "input", required=False)
        user = f"{instruction}\n\n{extra}" if extra else instruction
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": _text_field(rec, "output")}]
    elif shape == "text":
        # Plain text trains as one assistant turn: the whole text carries loss.
        messages = [{"role": "assistant", "content": _text_field(rec, "text")}]
    else:
        raise ValueError(f"unknown format '{shape}'")
    if not any(m["role"] == "assistant" for m in messages):
        raise ValueError("conversation has no assistant message to learn from")
    if messages[-1]["role"] != "assistant":
        raise ValueError("conversation must end with an assistant message")
    return messages, shape


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
            raise HarnessError(str(exc), where=where, hint=_CONVERT_HINT) from None
        shapes[shape] += 1
        records.append(_Record(messages, domain, where, shape))
    info: dict[str, Any] = {"source": _source_name(src), "domain": domain, "records_read": len(records),
                            "shapes": dict(shapes)}
    if src.path is not None:
        info["sha256"] = sha256_file(src.path)
    else:
        info["hub"] = {"id": src.hub, "subset": src.subset, "split": src.split}
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


def _fingerprint(cfg: DataConfig, seed: int, inputs: list[dict[str, Any]]) -> str:
    settings = cfg.model_dump(mode="json", exclude={"output_dir"})
    for section in [*settings["sources"], settings["replay"] or {}]:
        section.pop("path", None)  # identified by content hash below, not by where it sits
    return stable_hash({"settings": settings, "seed": seed,
                        "inputs": [(i.get("sha256") or i.get("hub"), i["domain"]) for i in inputs]})


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

    fingerprint = _fingerprint(cfg, seed, inputs)
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

    replay_added = 0
    replay_note = None
    if cfg.replay is not None:
        wanted = round(cfg.replay.ratio / (1 - cfg.replay.ratio) * len(train))
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
        "per_domain": per_domain,
    }
    card: dict[str, Any] = {
        "schema_version": ARTIFACT_VERSION, "kind": "data_card", "status": "complete", "created": utc_now(),
        "fingerprint": fingerprint, "seed": seed, "settings": cfg.model_dump(mode="json"),
        "inputs": inputs, "counts": counts,
        "drop_summary": dict(Counter(d["reason"] for d in drops)), "drops": drops,
        "lengths": {"train": _length_stats(train), "validation": _length_stats(validation)},
        "notes": [replay_note] if replay_note else [],
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
              f"({len(drops)} dropped; replay added: {replay_added})")
    return DataResult(out, out / "train.jsonl", out / "validation.jsonl", out / "data_card.json", counts)
