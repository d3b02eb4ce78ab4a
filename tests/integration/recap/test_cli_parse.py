"""`recap parse`: the normalized transcript as JSON, or exit 2 with an error object for bad input."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from recap.cli import app
from tests.conftest import REPO
from tests.factories import BAD_INPUTS


@pytest.fixture
def small_limits(configure):
    configure(RECAP_MAX_TRANSCRIPT_BYTES="10000", RECAP_MAX_TURNS="100")


@pytest.mark.parametrize(("raw", "options", "code"), BAD_INPUTS)
def test_every_bad_input_exits_2_with_its_code(small_limits, tmp_path, raw, options, code) -> None:
    path = tmp_path / "meeting.in"
    path.write_bytes(raw)
    forced = ["--format", options["format"]] if "format" in options else []
    result = CliRunner().invoke(app, ["parse", str(path), *forced, "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert set(error) == {"code", "message"}
    assert error["code"] == code and len(error["message"]) > 20


def test_the_team_formats_print_the_documented_shape(team_dir) -> None:
    """A real process, as users run it: JSON on stdout, times null when the source has none."""
    out = {}
    for fmt in ("vtt", "txt"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "recap.cli",
                "parse",
                str(team_dir / f"data/formats/IS1006d.{fmt}"),
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        out[fmt] = json.loads(done.stdout)
    assert out["vtt"]["format"] == "vtt" and out["txt"]["format"] == "txt"
    first = out["vtt"]["turns"][0]
    assert set(first) == {"speaker", "text", "start", "end"}
    assert (first["speaker"], first["start"], first["end"]) == ("Project Manager", 0.0, 1.0)
    assert out["txt"]["turns"][0]["start"] is None and out["txt"]["turns"][0]["end"] is None
    strip = [(t["speaker"], t["text"]) for t in out["txt"]["turns"]]
    assert strip == [(t["speaker"], t["text"]) for t in out["vtt"]["turns"]]


def test_a_missing_file_is_a_usage_error(tmp_path) -> None:
    # Wide enough that the error box does not wrap a long temporary path mid-sentence.
    result = CliRunner().invoke(app, ["parse", str(tmp_path / "nope.vtt"), "--json"], env={"COLUMNS": "400"})
    assert result.exit_code == 2 and "does not exist" in result.output
