"""The commands containers run: argument checks and `migrate --wait` (the workers' init container)."""

from typer.testing import CliRunner

from recap.cli import app
from shared.db.migrate import upgrade


def test_a_worker_name_must_be_a_queue(configure) -> None:
    result = CliRunner().invoke(app, ["worker", "summarizer"])
    said = " ".join(result.output.replace("│", " ").split())  # rich wraps the message in a box
    assert result.exit_code == 2 and "choose one of ingest, small, gate, large, notify" in said


def test_flower_will_not_listen_publicly_without_a_password(configure, tmp_path) -> None:
    configure(RECAP_FLOWER_ADDRESS="0.0.0.0", RECAP_VAR_DIR=str(tmp_path))
    result = CliRunner().invoke(app, ["flower"])
    assert result.exit_code == 2 and "RECAP_FLOWER_BASIC_AUTH" in result.output


def test_migrate_wait_returns_once_the_schema_is_at_head_and_gives_up_otherwise(configure, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'recap.db'}"
    configure(DATABASE_URL=url, RECAP_MIGRATE_WAIT_S="1")
    assert CliRunner().invoke(app, ["migrate", "--wait"]).exit_code == 1  # nothing migrated yet
    upgrade(url)
    assert CliRunner().invoke(app, ["migrate", "--wait"]).exit_code == 0
