"""The Typer app the command modules register on, and what they share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shared.config import get_settings
from shared.logs import configure as configure_logs

app = typer.Typer(
    help="Recap: asynchronous meeting summarization.", no_args_is_help=True, add_completion=False
)
models_app = typer.Typer(help="Model helpers.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console()

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (one object per line) instead of tables.")
]
DataOption = Annotated[Path, typer.Option("--data", help="Meetings, one JSON per line (QMSum's dev.jsonl).")]
LimitOption = Annotated[int | None, typer.Option(help="Use only the first N meetings.")]


def setup_logging() -> None:
    settings = get_settings()
    configure_logs(settings.log_level, settings.log_format)
