"""The test suite's own layout: tests/support is machinery only (import-linter keeps it from
importing tests, and test modules from importing each other; see pyproject.toml)."""

from __future__ import annotations

import ast
from pathlib import Path

SUPPORT = Path(__file__).resolve().parents[1] / "support"


def test_the_support_package_holds_no_tests() -> None:
    modules = sorted(SUPPORT.glob("*.py"))
    assert [m.name for m in modules if m.name.startswith("test")] == []
    for module in modules:
        tree = ast.parse(module.read_text(), str(module))
        tests = [
            node.name
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.name.lower().startswith("test")
        ]
        assert tests == [], f"{module.name} defines {tests}: tests belong in a test module"
