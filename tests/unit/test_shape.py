"""The code stays in pieces a reader can hold: no module over 300 lines (tests included), and nine functions in ten
of the product's at most 25 lines (a function's length: its `def` line through its last, docstring included,
decorators not; nested functions count on their own too)."""

from __future__ import annotations

import ast
import statistics
from pathlib import Path

from shared.config import REPO

PRODUCT = ("shared", "services", "inference", "recap")
MAX_MODULE_LINES = 300
MAX_P90_FUNCTION_LINES = 25


def modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (REPO / package).rglob("*.py"))


def function_lengths(path: Path) -> list[int]:
    nodes = ast.walk(ast.parse(path.read_text()))
    return [
        n.end_lineno - n.lineno + 1 for n in nodes if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    ]  # type: ignore[operator]


def test_no_module_is_over_300_lines() -> None:
    sizes = {
        str(p.relative_to(REPO)): len(p.read_text().splitlines())
        for p in modules(*PRODUCT, "tests", "migrations")
    }
    assert {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_nine_functions_in_ten_are_at_most_25_lines() -> None:
    lengths = [n for path in modules(*PRODUCT) for n in function_lengths(path)]
    assert len(lengths) > 500  # the measure saw the code
    p90 = statistics.quantiles(lengths, n=10)[-1]
    assert p90 <= MAX_P90_FUNCTION_LINES, f"p90 {p90} lines over {len(lengths)} functions"


def test_the_measure_counts_a_function_from_def_to_its_last_line(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text('@decorated\ndef f():\n    """Doc."""\n    def g():\n        return 1\n    return g\n')
    assert sorted(function_lengths(source)) == [2, 5]


def built_names(path: Path) -> list[int]:
    """Lines that read an attribute by a name built at runtime: getattr/setattr/hasattr with an f-string."""
    return [
        n.lineno
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and n.func.id in ("getattr", "setattr", "hasattr")
        and len(n.args) > 1
        and isinstance(n.args[1], ast.JoinedStr)
    ]


def test_no_setting_is_read_by_a_name_built_at_runtime() -> None:
    """Searching for `ingest_concurrency` finds the code that reads it: the name in the code is the name in the
    environment."""
    assert {str(p.relative_to(REPO)): lines for p in modules(*PRODUCT) if (lines := built_names(p))} == {}


def test_a_name_built_at_runtime_is_found(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text('def f(s, tier):\n    return getattr(s, f"{tier}_model"), getattr(s, "plain")\n')
    assert built_names(source) == [2]
