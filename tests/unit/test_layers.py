"""The import graph, lazy imports inside functions included: each layer imports only those below it.

recap (the CLI, stack, evaluation) -> services (one worker each) -> inference (models, scores) -> shared.
A service never imports another: what two stages share (the gate's scores, stalled-job detection) lives below
both, so each worker can be read, deployed and scaled alone.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("recap", "services", "inference", "shared")
MAY_IMPORT = {
    "shared": set(),
    "inference": {"shared"},
    "services": {"inference", "shared"},
    "recap": {"services", "inference", "shared"},
}


def imports(path: Path) -> Iterator[str]:
    """Every module a file imports, wherever in the file the import statement is."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)  # `from services import small`


def edges(package: str) -> Iterator[tuple[str, str]]:
    for path in sorted((REPO / package).rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for target in imports(path):
            if target.split(".")[0] in PACKAGES:
                yield module, target


@pytest.mark.parametrize("package", PACKAGES)
def test_each_layer_imports_only_the_layers_below(package: str) -> None:
    allowed = MAY_IMPORT[package] | {package}
    assert [(m, t) for m, t in edges(package) if t.split(".")[0] not in allowed] == []


def test_no_service_imports_another() -> None:
    crossing = [
        (module, target)
        for module, target in edges("services")
        if target.startswith("services.") and target.split(".")[1] != module.split(".")[1]
    ]
    assert crossing == []


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from services import gate\n    import recap.stack\n")
    assert set(imports(source)) == {"services.gate", "recap.stack"}
