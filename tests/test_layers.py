"""The layering of ../shared/ARCHITECTURE.md as an import contract (import-linter, pyproject.toml):
a lower layer never imports a higher one, not even inside a function."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tinyml_errors", "boards", "firmware", "search_spaces", "tinyengine", "codegen", "tinynas", "tinyml_cli")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=300)


def test_the_tree_keeps_its_layers():
    r = lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


def copy_tree(dst: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.c", "*.h"))


def test_a_forbidden_import_inside_a_function_breaks_the_contract(tmp_path):
    """The engine importing codegen lazily (what it used to do in seven places) is caught."""
    copy_tree(tmp_path)
    cost = tmp_path / "tinyengine" / "cost.py"
    cost.write_text(cost.read_text() + "\n\ndef _sneaky():\n    from codegen.lower import lower\n    return lower\n")
    r = lint_imports(tmp_path)
    assert r.returncode != 0
    assert "BROKEN" in r.stdout and "tinyengine.cost -> codegen.lower" in r.stdout


def test_a_lower_engine_module_importing_a_higher_one_breaks_the_contract(tmp_path):
    """Inside the engine too: the planner may not import a pass (the planner never rewrites the graph)."""
    copy_tree(tmp_path)
    plan = tmp_path / "tinyengine" / "planner" / "plan.py"
    plan.write_text(plan.read_text() + "\nfrom tinyengine.passes import patch  # noqa\n")
    r = lint_imports(tmp_path)
    assert r.returncode != 0
    assert "tinyengine.planner.plan -> tinyengine.passes.patch" in r.stdout
