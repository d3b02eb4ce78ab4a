"""`recap`: run the local stack, submit transcripts, read jobs, measure the cascade, manage models.

Each command is thin: it parses options and calls a module that says what it does. The commands live by theme
(`ops`, `jobs`, `measure`, `models`, `tenants`, `tune`) and register themselves on `app` when imported here.
"""

from __future__ import annotations

from recap.cli import jobs, measure, models, ops, tenants, tune  # noqa: F401  (registers the commands)
from recap.cli.app import app, console, models_app

__all__ = ["app", "console", "models_app"]
