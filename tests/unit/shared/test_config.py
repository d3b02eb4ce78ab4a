import pytest
from pydantic import ValidationError

from shared.config import Settings


@pytest.mark.parametrize("given", ["postgresql://u:p@db:5432/recap", "postgres://u:p@db:5432/recap"])
def test_the_usual_postgres_url_works_as_given(given: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    assert Settings().database_url == "postgresql+psycopg://u:p@db:5432/recap"


def test_defaults_need_no_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url.startswith("sqlite:///")
    assert settings.broker_url == f"redis+socket://{settings.redis_socket}"
    assert settings.small_model == "google/flan-t5-large"


def test_visibility_timeout_must_exceed_the_stage_time_limit() -> None:
    with pytest.raises(ValidationError, match="VISIBILITY_TIMEOUT"):
        Settings(visibility_timeout_s=600, stage_time_limit_s=900)


def test_the_gate_file_outranks_dotenv_and_the_environment_outranks_it(monkeypatch, tmp_path) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "RECAP_GATE_THRESHOLD=0.1\nRECAP_GATE_SCORE=min_margin\nRECAP_GATE_TARGET_RATE=0.4\n"
    )
    monkeypatch.delenv("RECAP_GATE_FILE")  # the default place: <RECAP_VAR_DIR>/gate.json
    monkeypatch.setenv("RECAP_VAR_DIR", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "gate.json").write_text(
        json.dumps({"gate_policy": "online", "gate_threshold": 0.7, "gate_score": "mean_entropy"})
    )
    monkeypatch.setenv("RECAP_GATE_SCORE", "p10_margin")
    settings = Settings()
    assert settings.gate_policy == "online" and settings.gate_threshold == 0.7  # the file beat .env
    assert settings.gate_score == "p10_margin"  # the environment beat the file
    assert settings.gate_target_rate == 0.4  # .env still supplies what the file does not say


@pytest.mark.parametrize(
    ("period", "start"),
    [("hour", "2026-11-21T18:00:00"), ("day", "2026-11-21T00:00:00"), ("month", "2026-11-01T00:00:00")],
)
def test_budget_periods_start_on_utc_boundaries(period: str, start: str) -> None:
    from datetime import UTC, datetime

    from shared.db.budget import period_start

    now = datetime(2026, 11, 21, 18, 42, 7, 123, tzinfo=UTC)
    assert period_start(now, period) == datetime.fromisoformat(start).replace(tzinfo=UTC)


def test_prompt_styles_are_chosen_per_model_and_checked_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.prompts import PLAIN, TOPICS

    monkeypatch.setenv("RECAP_PROMPTS", '{"bundled:smollm2-135m-instruct": "topics"}')
    settings = Settings(small_model="bundled:smollm2-135m-instruct", large_model="some/other")
    assert settings.tier("small").prompts is TOPICS and settings.tier("large").prompts is PLAIN
    with pytest.raises(ValidationError, match="unknown prompt style chatty; choose one of plain, topics"):
        Settings(prompts={"m": "chatty"})
