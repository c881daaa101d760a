"""Atomic, typed artifacts: every file a stage writes goes through here.

A reader (another stage, the gate, the report) never sees a half-written file: we write to a
temporary file in the same folder, fsync, then ``os.replace``. Folders are staged the same way.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "ARTIFACT_VERSION",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_write_jsonl",
    "staged_dir",
    "read_json",
    "sha256_file",
    "sha256_bytes",
    "sha256_tree",
    "stable_hash",
    "environment_info",
    "utc_now",
    "update_manifest",
    "iter_jsonl",
    "read_jsonl",
]

ARTIFACT_VERSION = 1

_PACKAGES = (
    "alignment-harness", "torch", "transformers", "trl", "peft", "datasets", "lm_eval",
    "accelerate", "bitsandbytes", "label-studio-sdk", "mlflow", "pandas", "scipy", "pydantic",
)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _writer() -> bool:
    """Under ``accelerate launch`` every process runs the stage; only the main one writes artifacts."""
    return int(os.environ.get("RANK", "0")) == 0


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    if not _writer():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    return json.dumps(obj, indent=indent, ensure_ascii=False, default=_json_default, sort_keys=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, dumps(obj) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> Path:
    return atomic_write_text(path, "".join(dumps(r, indent=None) + "\n" for r in rows))


def iter_jsonl(path: str | os.PathLike, *, hint: str | None = None) -> Iterator[tuple[str, Any]]:
    """Yield ``("file:line", object)`` for each non-blank line; a malformed line is one clear error."""
    from harness.errors import HarnessError

    with open(path, encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{n}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise HarnessError(f"line is not valid JSON ({exc.msg} at column {exc.colno})", where=f"{path}:{n}",
                                   hint=hint or "each line of a .jsonl file must be one JSON object") from None


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """All objects of a JSONL file (blank lines skipped)."""
    return [obj for _, obj in iter_jsonl(path)]


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``final`` in one rename.

    On an exception the temporary folder is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not _writer():  # another launched process: the main one writes the folder
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old.{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(final.parent)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(root: str | os.PathLike, *, suffixes: tuple[str, ...] | None = None) -> str:
    """Hash a folder's files (relative names and contents) in a stable order."""
    root = Path(root)
    h = hashlib.sha256()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        if suffixes and not p.name.endswith(suffixes):
            continue
        if any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        h.update(str(p.relative_to(root).as_posix()).encode())
        h.update(b"\0")
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def stable_hash(obj: Any) -> str:
    """Hash of a JSON-able object, independent of key order."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, default=_json_default).encode())


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def environment_info() -> dict[str, Any]:
    """Package versions, git sha and hardware: what a reviewer needs to reproduce a run."""
    versions = {}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    hw: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
    }
    with contextlib.suppress(Exception):
        import torch

        hw["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            hw["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    with contextlib.suppress(OSError, ValueError):
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        hw["memory_gib"] = round(pages / 2**30, 1)
    return {"packages": versions, "git_sha": _git_sha(), "hardware": hw}


def update_manifest(run_dir: str | os.PathLike, stage: str, entry: dict[str, Any]) -> Path:
    """Record one stage's resolved config, inputs and seed in ``<run_dir>/manifest.json``.

    The manifest is rewritten atomically; other stages' entries are kept.
    """
    from harness._lock import file_lock  # local: keeps import time of artifacts low

    run_dir = Path(run_dir)
    path = run_dir / "manifest.json"
    with file_lock(run_dir / ".manifest.lock"):
        manifest = read_json(path) if path.exists() else {
            "version": ARTIFACT_VERSION, "run_id": run_dir.name, "created": utc_now(), "stages": {},
        }
        manifest["updated"] = utc_now()
        manifest["environment"] = environment_info()
        manifest["stages"][stage] = entry
        return atomic_write_json(path, manifest)
