"""The shape of the code: a kernel that imports no plugin, stages that do not import each other,
no package reaching into another's private modules; import-linter's contracts and ruff pass."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGINS = {"rlhf", "feedback", "reports"}
OURS = {"harness", "suites", *PLUGINS}
TRAINING_STAGES = {"rlhf.sft", "rlhf.reward", "rlhf.dpo", "rlhf.online"}


def _imports(path: Path, package: str) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions (relative imports resolved)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)  # 'from rlhf import sft' imports rlhf.sft
    return out


def _modules(*packages: str):
    for package in packages:
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            yield name, path


def test_importing_every_kernel_module_loads_no_plugin():
    code = ("import importlib, pkgutil, sys, harness\n"
            "for m in pkgutil.walk_packages(harness.__path__, 'harness.'):\n"
            "    importlib.import_module(m.name)\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in {'rlhf', 'feedback', 'reports'})\n"
            "assert not loaded, loaded\n"
            "print('ok', len([m for m in sys.modules if m.startswith('harness')]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.split()[1]) > 20  # it did import the kernel's modules


def test_the_kernel_imports_no_plugin_package():
    bad = [f"{name} imports {m}" for name, path in _modules("harness") for m in _imports(path, name)
           if m.split(".")[0] in PLUGINS]
    assert not bad, bad


def test_no_package_imports_another_packages_private_modules():
    bad = []
    for name, path in _modules("harness", "rlhf", "feedback", "reports", "suites"):
        for m in _imports(path, name):
            parts = m.split(".")
            if parts[0] in OURS and parts[0] != name.split(".")[0] \
                    and any(p.startswith("_") and not p.startswith("__") for p in parts):
                bad.append(f"{name} imports {m}")
    assert not bad, bad


def test_training_stages_do_not_import_each_other():
    for name, path in _modules("rlhf"):
        if name in TRAINING_STAGES:
            others = (TRAINING_STAGES - {name}) & _imports(path, name)
            assert not others, f"{name} imports {others}: shared code belongs in a shared module"


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed in this environment (pip install -e '.[test]')")
    return found


def test_import_linter_contracts_are_kept():
    proc = subprocess.run([_tool("lint-imports")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_ruff_finds_nothing():
    proc = subprocess.run([_tool("ruff"), "check", "harness", "rlhf", "feedback", "reports", "suites", "tests", "bench"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_modules_stay_small():
    """Issue 16's size rule: no module over 400 lines, the runner at most 250."""
    sizes = {str(path.relative_to(REPO)): len(path.read_text().splitlines())
             for _, path in _modules("harness", "rlhf", "feedback", "reports", "suites")}
    assert sizes["harness/cycle.py"] <= 250
    big = {p: n for p, n in sizes.items() if n > 400}
    assert not big, f"split these modules: {big}"
