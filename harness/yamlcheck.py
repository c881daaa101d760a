"""Strict YAML reading for configs and policies: duplicate keys refused, each key's line kept, and
pydantic errors turned into ``file:line: key: problem`` lines."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from harness.errors import HarnessError

__all__ = ["compose_checked", "format_errors"]


class _StrictLoader(yaml.SafeLoader):
    pass


def compose_checked(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML, refuse duplicate keys, and map each key path to its line number."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        lines: dict[tuple, int] = {}
        dupes: list[str] = []

        def walk(n: yaml.Node, path: tuple) -> None:
            if isinstance(n, yaml.MappingNode):
                seen: dict[Any, int] = {}
                for k, v in n.value:
                    key = loader.construct_object(k, deep=True)
                    line = k.start_mark.line + 1
                    if key in seen:
                        dotted = ".".join(str(p) for p in (*path, key))
                        dupes.append(f"{source}:{line}: duplicate key '{dotted}' (first at line {seen[key]})")
                    seen[key] = line
                    lines[(*path, key)] = line
                    walk(v, (*path, key))
            elif isinstance(n, yaml.SequenceNode):
                for i, item in enumerate(n.value):
                    lines[(*path, i)] = item.start_mark.line + 1
                    walk(item, (*path, i))

        walk(node, ())
        if dupes:
            raise HarnessError("\n".join(dupes), hint="each key may appear once per section")
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise HarnessError(f"not valid YAML: {getattr(exc, 'problem', exc)}", where=where,
                           hint="check indentation and quoting near that line") from None
    finally:
        loader.dispose()
    return data, lines


def format_errors(exc: ValidationError, source: str, lines: dict[tuple, int]) -> str:
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        line = None
        for cut in range(len(loc), 0, -1):
            if loc[:cut] in lines:
                line = lines[loc[:cut]]
                break
        where = f"{source}:{line}" if line else source
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] not in ("missing",) and "input" in err and not isinstance(err["input"], dict):
            msg += f", got {err['input']!r}"
        out.append(f"{where}: {dotted}: {msg}")
    return "\n".join(dict.fromkeys(out))
