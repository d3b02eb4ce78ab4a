"""Fail points: named places in production code where a test can make a process crash, once.

Off unless RECAP_FAILPOINT_DIR is set (then a hit costs one `stat`). A test arms a point by writing a file
`<dir>/<point>.armed` whose text is the action: `exit` ends the process at once (`os._exit`, as a kill -9 would),
`raise` raises `FailPointError`. The first process to hit an armed point renames its file to `<point>.fired`
(atomic: exactly one process fires, once, whichever worker or restart hits it) and acts.
"""

from __future__ import annotations

import logging
import os
from enum import StrEnum
from pathlib import Path

from shared.config import get_settings

log = logging.getLogger(__name__)


class Point(StrEnum):
    AFTER_COMMIT = "after_commit"  # a stage committed its move and has not sent the next message yet
    ENDING_JOB = "ending_job"  # a stage is ending a job (done, degraded or failed), before its commit
    SUBMIT = "submit"  # a submission (API or `recap submit`) wrote its job and has not committed it yet


class FailPointError(RuntimeError):
    """Raised by a `raise` fail point: stands for any bug on that path."""


def arm(folder: Path, point: Point, action: str) -> Path:
    """Arms `point` in `folder` (tests); the path that appears once it fired."""
    if action not in ("exit", "raise"):
        raise ValueError(f"unknown fail point action {action!r}; use exit or raise")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{point}.armed").write_text(action)
    return folder / f"{point}.fired"


def hit(point: Point) -> None:
    """Fires `point` if a test armed it."""
    folder = get_settings().failpoint_dir
    if folder is None:
        return
    armed, fired = folder / f"{point}.armed", folder / f"{point}.fired"
    try:
        action = armed.read_text().strip()
        armed.rename(fired)  # only one process wins the rename
    except FileNotFoundError:
        return
    fired.write_text(f"{action} {os.getpid()}\n")
    log.warning("fail point %s fired (%s)", point, action)
    if action == "exit":
        os._exit(70)
    raise FailPointError(f"fail point {point}")
