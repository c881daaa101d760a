"""Every command and override the harness tells a user to run exists: hints and messages in the code,
the README, the docs and the scripts are parsed against the real command line and config schema.
An unknown option of any command is a usage error (exit 2, no traceback)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import typer
from pydantic import BaseModel

from harness.cli import main, register_plugin_commands
from harness.config import config_model

REPO = Path(__file__).resolve().parents[2]
_COMMAND = re.compile(r"(?:\bharness|\$H)[ \t]+([a-z][^'\"`;)\n|#]*)")
_OVERRIDE = re.compile(r"(?<![\w./$-])([a-z_]+(?:\.[a-z_]+)+)=")
_PLACEHOLDER_OVERRIDES = {"key.path"}  # the syntax itself, in help texts
_OTHER_PROGRAM = re.compile(r"\b(?:pip|apt-get|accelerate|python -m \S+)[ \t][^;()]*")


def _root():
    return typer.main.get_command(register_plugin_commands())


def _commands(group=None, path=()):
    """(path, click command) for every command and group of the CLI."""
    group = group or _root()
    yield path, group
    for name, cmd in getattr(group, "commands", {}).items():
        yield from _commands(cmd, (*path, name))


def _options(cmd) -> set[str]:
    return {o for p in cmd.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ())) if o.startswith("-")}


def _config_path_ok(path: str) -> bool:
    model: type[BaseModel] | None = config_model()
    for part in path.split("."):
        if model is None or part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        model = next((a for a in (annotation, *typing.get_args(annotation))
                      if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return True


def _mentions() -> list[tuple[str, str]]:
    """(where, text) of every string in the project's code, and every line of its docs and scripts."""
    out = []
    for pkg in ("harness", "rlhf", "feedback", "reports", "suites"):
        for file in sorted((REPO / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = node.value
                elif isinstance(node, ast.JoinedStr):  # f-strings: the literal parts, a placeholder for the rest
                    text = "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
                else:
                    continue
                out.append((f"{file.relative_to(REPO)}:{node.lineno}", text))
    for file in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "scripts").glob("*.sh")),
                 *sorted((REPO / "examples").rglob("*.yaml")), REPO / ".ci" / "run"]:
        for i, line in enumerate(file.read_text().splitlines(), 1):
            out.append((f"{file.relative_to(REPO)}:{i}", line))
    return out


def _check_command(text: str) -> str | None:
    """None when ``text`` (what follows 'harness ') names a real command with real options; else why not.
    Prose ('the harness loads ...') is no command mention and passes."""
    tokens = text.split()
    node, path = _root(), []
    while tokens and getattr(node, "commands", None) is not None:
        word = tokens[0].rstrip(".,:")
        if word not in node.commands and getattr(node, "default_command", None):
            tokens, word = [node.default_command, *tokens], node.default_command  # 'harness report RUN' is 'report write RUN'
        if word not in node.commands:
            if not path:
                return None  # prose
            if "|" in word or word.isupper() or word.startswith(("-", "<", "{", "[")) or word == "X":
                break  # a placeholder for one of several sub-commands
            return f"'harness {' '.join(path)}' has no sub-command '{word}'"
        node = node.commands[word]
        path.append(word)
        tokens = tokens[1:]
    known = _options(node)
    for token in tokens:
        if token.startswith("--"):
            option = token.split("=")[0].rstrip(".,:")
            if option not in known:
                return f"'harness {' '.join(path)}' has no option {option} (it has {', '.join(sorted(known))})"
        m = _OVERRIDE.match(token)
        if m and m.group(1) not in _PLACEHOLDER_OVERRIDES and not _config_path_ok(m.group(1)):
            return f"'{m.group(1)}' is not a config key"
    return None


def test_every_command_and_override_the_harness_names_exists():
    problems, checked = [], 0
    for where, text in _mentions():
        for m in _COMMAND.finditer(text):
            checked += 1
            why = _check_command(m.group(1))
            if why:
                problems.append(f"{where}: {why}: {m.group(0).strip()!r}")
        for m in _OVERRIDE.finditer(text):
            if m.group(1) not in _PLACEHOLDER_OVERRIDES and m.group(1).split(".")[0] in config_model().model_fields:
                checked += 1
                if not _config_path_ok(m.group(1)):
                    problems.append(f"{where}: '{m.group(1)}' is not a config key: {text.strip()[:120]!r}")
    assert checked > 100  # the scan found the hints (it reads what it should)
    assert not problems, "\n".join(problems)


def test_the_checker_catches_what_it_should():
    assert _check_command("cycle --config c.yaml --no-pdf") is None
    assert _check_command("promote DECISION --approver NAME") is None
    assert _check_command("loads safetensors only") is None  # prose
    assert "no option --bogus" in _check_command("sft --bogus")
    assert "no sub-command 'verfy'" in _check_command("ledger verfy")
    assert _check_command("report demo --profile eu-ai-act") is None  # the default sub-command, write
    assert "no option --profle" in _check_command("report demo --profle eu-ai-act")
    assert "not a config key" in _check_command("cycle sft.max_stepz=2")
    assert _config_path_ok("sft.lora.r") and _config_path_ok("cycle.pdf") and not _config_path_ok("cycle.pdff")


def test_options_in_error_hints_exist_on_some_command():
    """A hint like 'pass --no-pdf' must name an option the harness has (it was once not an option of the
    command that printed it)."""
    every = set().union(*(_options(cmd) for _, cmd in _commands()))
    problems = []
    for pkg in ("harness", "rlhf", "feedback", "reports"):
        for file in sorted((REPO / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.keyword) and node.arg == "hint":
                    parts = [v for v in ast.walk(node.value) if isinstance(v, ast.Constant) and isinstance(v.value, str)]
                    for part in parts:
                        ours = _OTHER_PROGRAM.sub("", part.value)  # pip's and apt-get's options are theirs
                        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", ours):
                            if option not in every:
                                problems.append(f"{file.relative_to(REPO)}:{node.lineno}: {option}")
    assert not problems, problems


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=lambda p: " ".join(p) or "harness")
def test_an_unknown_option_is_a_usage_error(path, capsys):
    assert main([*path, "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --no-such-option" in err and "Traceback" not in err
    assert f"usage: harness {' '.join(path)}".strip() in err and "--help' lists the options" in err


def test_unknown_command_and_option_from_the_installed_command():
    for args, message in ((["sft", "--bogus"], "No such option: --bogus"), (["cycel"], "No such command 'cycel'")):
        proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 2  # the error and the usage line


def test_cycle_pdf_options_parse_into_the_config(tmp_path, capsys, monkeypatch):
    """The option a hint once named: 'harness cycle --no-pdf' (the cycle tests run it end to end)."""
    monkeypatch.chdir(tmp_path)
    assert main(["config", "show", "cycle.pdf=false", "cycle.pdf_renderer=chromium"]) == 0
    shown = capsys.readouterr().out
    assert "pdf: false" in shown and "pdf_renderer: chromium" in shown
    assert main(["cycle", "--no-pdf", "--pdf-renderer", "paper", "run.id=x"]) == 2
    err = capsys.readouterr().err
    assert "cycle.pdf_renderer" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()
