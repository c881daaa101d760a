"""Shared building blocks of config sections (kernel and plugins): the strict section base and the
path/model-reference field types that resolve relative paths against the config file's folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

__all__ = ["Section", "InputPath", "ModelRef"]


def _resolve_input_path(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is None:
        return None
    value = Path(os.path.expanduser(str(value)))
    base = (info.context or {}).get("base_dir")
    if not value.is_absolute() and base is not None:
        value = Path(base) / value
    return value


InputPath = Annotated[Path, AfterValidator(_resolve_input_path)]


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or os.sep in ref and Path(ref).exists()


def _resolve_model_ref(value: str, info: ValidationInfo) -> str:
    if value.startswith("builtin:") or not value.startswith((".", "~")):
        return value
    base = (info.context or {}).get("base_dir")
    p = Path(os.path.expanduser(value))
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    return str(p)


ModelRef = Annotated[str, AfterValidator(_resolve_model_ref)]


class Section(BaseModel):
    """A config section: unknown keys are refused, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)
