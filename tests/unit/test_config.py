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


def test_an_unknown_gate_score_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="first_margin"):
        Settings(gate_score="vibes")


def test_visibility_timeout_must_exceed_the_stage_time_limit() -> None:
    with pytest.raises(ValidationError, match="VISIBILITY_TIMEOUT"):
        Settings(visibility_timeout_s=600, stage_time_limit_s=900)
