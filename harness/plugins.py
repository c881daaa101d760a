"""Finding stages and command-line commands through entry points (the kernel never imports them).

* ``harness.stages``: each entry point names a :class:`harness.stage.Stage` object.
* ``harness.sections``: each names a pydantic model, the config section of that name (a package's
  stages and commands read it; ``rlhf`` brings sft, merge, reward, dpo, online).
* ``harness.commands``: each names a function ``register(app: typer.Typer) -> None`` that adds the
  package's sub-commands to the ``harness`` command line.
* ``harness.renderers``: each names a function that renders a kernel result for people, by kind
  (``sweep``: ``render(table: dict, folder: Path) -> Path``, the sweep's HTML page).

A stage that brings its own config section (``Stage.config``) adds it to the config schema, so a
cycle YAML may carry it and unknown keys inside it are still refused.
"""

from __future__ import annotations

import functools
from importlib import metadata
from collections.abc import Iterable
from typing import Any, Callable

from harness.errors import HarnessError
from harness.stage import Stage

__all__ = ["stages", "plan", "command_registrars", "renderers", "plugin_sections", "in_cycle_order", "STAGE_GROUP",
           "SECTION_GROUP", "COMMAND_GROUP", "RENDERER_GROUP"]

STAGE_GROUP = "harness.stages"
SECTION_GROUP = "harness.sections"
COMMAND_GROUP = "harness.commands"
RENDERER_GROUP = "harness.renderers"


def _load(group: str) -> list[tuple[metadata.EntryPoint, Any]]:
    out = []
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        try:
            out.append((ep, ep.load()))
        except Exception as exc:  # a broken plugin is named, not a traceback from deep inside importlib
            raise HarnessError(f"the plugin entry point '{ep.name} = {ep.value}' ({group}) could not be loaded: "
                               f"{type(exc).__name__}: {exc}",
                               hint="reinstall the package that provides it (pip install -e . for this project)") from exc
    return out


@functools.lru_cache(maxsize=None)
def stages() -> dict[str, Stage]:
    """Every registered stage by name, in cycle order."""
    found: dict[str, Stage] = {}
    for ep, stage in _load(STAGE_GROUP):
        if not isinstance(stage, Stage):
            raise HarnessError(f"the entry point '{ep.name} = {ep.value}' is not a harness.stage.Stage",
                               hint="point it at a Stage object (STAGE = Stage(name=..., run=...))")
        if stage.name in found:
            raise HarnessError(f"two plugins register a stage named '{stage.name}'", hint="rename one of them")
        found[stage.name] = stage
    if not found:
        raise HarnessError("no stages are registered (entry points 'harness.stages')",
                           hint="install the project (pip install -e .) so its entry points exist")
    ordered = dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))
    names = list(ordered)
    for stage in ordered.values():
        for need in stage.needs:
            if need not in ordered:
                raise HarnessError(f"stage '{stage.name}' needs '{need}', which no plugin registers")
            if names.index(need) > names.index(stage.name):
                raise HarnessError(f"stage '{stage.name}' (order {stage.order}) needs '{need}', which comes after it",
                                   hint="give the stage a larger order")
    return ordered


def plan(config: Any) -> list[Stage]:
    """The stages a config runs, in order (a stage's ``enabled(config)`` may leave it out)."""
    return [s for s in stages().values() if s.enabled is None or s.enabled(config)]


def command_registrars() -> list[Callable[[Any], None]]:
    return [fn for _, fn in _load(COMMAND_GROUP)]


def renderers() -> dict[str, Callable[..., Any]]:
    """Renderers by the kind of result they render (``sweep``)."""
    return {ep.name: fn for ep, fn in _load(RENDERER_GROUP)}


def plugin_sections(kernel_sections: set[str]) -> dict[str, type]:
    """Config sections that plugins bring (not already in the kernel's config), in cycle order."""
    from pydantic import BaseModel

    out: dict[str, type] = {}
    for ep, model in _load(SECTION_GROUP):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise HarnessError(f"the entry point '{ep.name} = {ep.value}' ({SECTION_GROUP}) is not a pydantic model",
                               hint="point it at the section's model class (extra='forbid')")
        if ep.name in kernel_sections:
            raise HarnessError(f"the plugin section '{ep.name} = {ep.value}' has the name of a kernel section",
                               hint="rename the plugin's section")
        out[ep.name] = model
    for stage in stages().values():
        if stage.config is not None and stage.section and stage.section not in kernel_sections:
            if out.get(stage.section, stage.config) is not stage.config:
                raise HarnessError(f"two plugins bring a config section named '{stage.section}'", hint="rename one of them")
            out[stage.section] = stage.config
    return {name: out[name] for name in in_cycle_order(out)}


def in_cycle_order(sections: Iterable[str]) -> list[str]:
    """Section names ordered by the first registered stage that reads each (others last, in their order)."""
    rank: dict[str, int] = {}
    for i, stage in enumerate(stages().values()):
        if stage.section:
            rank.setdefault(stage.section, i)
    return sorted(sections, key=lambda s: rank.get(s, len(rank)))
