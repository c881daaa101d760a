"""Reading data sources (JSONL, JSON, CSV, Parquet, a hub dataset) and normalizing every record to
chat messages; a malformed record is reported with its file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.artifacts import iter_jsonl
from harness.config import DataSource
from harness.errors import HarnessError

__all__ = ["ROLES", "CONVERT_HINT", "source_name", "read_records", "normalize_record"]

ROLES = ("system", "user", "assistant")
_SUFFIXES = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
CONVERT_HINT = "accepted shapes: {messages: [{role, content}]}, {prompt, completion}, {instruction, input, output}, {text}"
_CONVERT_HINT = CONVERT_HINT


def source_name(src: DataSource) -> str:
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
        ds = datasets.load_dataset(src.hub, src.subset, split=src.split, revision=src.revision)
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
    if shape != "text":  # plain text is one assistant turn by construction
        _check_order(messages)
    return messages, shape


def _check_order(messages: list[dict[str, str]]) -> None:
    """An optional system turn first, then user and assistant turns by turns, starting with the user
    (a chat template renders anything else as a conversation nobody had)."""
    turns = messages[1:] if messages[0]["role"] == "system" else messages
    for i, m in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if m["role"] != expected:
            at = i + (len(messages) - len(turns))
            where = "only the first turn may be 'system'" if m["role"] == "system" else \
                f"expected '{expected}' (an optional system turn, then user and assistant turns by turns)"
            raise ValueError(f"turn {at} is '{m['role']}': {where}")
