"""Fail points: off without a folder; an armed point fires once, in whichever process hits it first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared import failpoints
from shared.failpoints import FailPointError, Point, arm


def test_points_are_off_without_a_folder(configure, tmp_path: Path) -> None:
    configure()
    arm(tmp_path, Point.ENDING_JOB, "raise")  # armed in a folder nobody named
    failpoints.hit(Point.ENDING_JOB)
    assert (tmp_path / "ending_job.armed").exists()


def test_an_armed_point_raises_once(configure, tmp_path: Path) -> None:
    configure(RECAP_FAILPOINT_DIR=str(tmp_path))
    failpoints.hit(Point.ENDING_JOB)  # not armed: nothing
    fired = arm(tmp_path, Point.ENDING_JOB, "raise")
    failpoints.hit(Point.AFTER_COMMIT)  # another point: nothing
    with pytest.raises(FailPointError, match="ending_job"):
        failpoints.hit(Point.ENDING_JOB)
    assert fired.exists() and not (tmp_path / "ending_job.armed").exists()
    failpoints.hit(Point.ENDING_JOB)  # once only


def test_an_exit_point_ends_the_process_at_once(tmp_path: Path) -> None:
    fired = arm(tmp_path, Point.AFTER_COMMIT, "exit")
    code = "from shared import failpoints; failpoints.hit(failpoints.Point.AFTER_COMMIT); print('went on')"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"RECAP_FAILPOINT_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 70 and "went on" not in done.stdout
    assert fired.read_text().startswith("exit ")


def test_an_unknown_action_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exit or raise"):
        arm(tmp_path, Point.SUBMIT, "hang")
