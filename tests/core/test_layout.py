"""The layout keeps its shape: tests mirror the packages and share helpers only through tests/support and
conftest.py; the layer contracts themselves are checked by import-linter in ``make test``."""

from __future__ import annotations

import ast
from pathlib import Path

from bot.core.config import ROOT

TESTS = ROOT / "tests"
PACKAGES = ("bot", "sms_gateway", "knowledge_base")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_test_module_imports_another() -> None:
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in TESTS.rglob("*.py")
        for name in _imported_modules(path)
        if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith(("test_", "conftest"))
    }
    assert offenders == set()


def test_tests_mirror_the_packages() -> None:
    """Every test module sits in a folder of tests/ (one per area), none at the top."""
    top_level = sorted(p.name for p in TESTS.glob("test_*.py"))
    assert top_level == []
    for folder in (p for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        assert (folder / "__init__.py").exists(), folder


def test_production_packages_hold_no_test_harness() -> None:
    """Test doubles of external systems sit beside their adapter (``fake*.py``, ``testing.py`` in an
    adapter's folder); harnesses that wire our own parts together live in tests/support/."""
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "tests" in _imported_modules(path) or any(
                n.startswith("tests.") for n in _imported_modules(path)
            ):
                raise AssertionError(f"{path.relative_to(ROOT)} imports the tests")
