"""Fixtures: real Postgres and Redis (a failure under CI=true when absent), the team folder, test models."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from shared.config import REPO, Settings, get_settings
from shared.db.migrate import upgrade

TEAM = Settings().team_dir  # RECAP_TEAM_DIR, else ../shared beside the checkout
IN_CI = os.environ.get("CI") == "true"
PG_URL = os.environ.get("RECAP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# One Redis database per xdist worker (gw0 -> 9, gw1 -> 10): tests flush theirs between them.
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
REDIS_URL = os.environ.get("RECAP_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{9 + WORKER}")
STACKS = ("e2e", "faults")  # test folders whose tests start `recap up`: one such test at a time (xdist_group)


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist): workers inherit it
        os.environ["RECAP_TEST_NOTES"] = str(Path(tempfile.mkdtemp(prefix="recap-notes-")) / "notes.txt")


def note(line: str) -> None:
    """A line for the end of the run (the fault suite's one per scenario). A file, not a list: under xdist the
    tests run in the workers and the summary is printed by the controller."""
    with Path(os.environ["RECAP_TEST_NOTES"]).open("a") as notes:
        notes.write(line + "\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    notes = Path(os.environ["RECAP_TEST_NOTES"])
    if notes.is_file():
        terminalreporter.section("fault suite")
        for line in notes.read_text().splitlines():
            terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `pytest -n 2 --dist loadgroup` (make test) the stacks run one after another on one worker while the
    other worker takes the in-process tests: a stack is several processes, and two at once on two cores would
    only slow both."""
    for item in items:
        if item.path.relative_to(Path(__file__).parent).parts[0] in STACKS:
            item.add_marker(pytest.mark.xdist_group("stacks"))


def need(ok: bool, reason: str) -> None:
    """Skips on a developer's machine; fails in CI, where every real dependency must be present."""
    if not ok:
        if IN_CI:
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def team_dir() -> Path:
    need(TEAM.is_dir(), f"the team folder {TEAM} is absent (it holds the QMSum corpus and real tokenizer)")
    return TEAM


@pytest.fixture(scope="session")
def dev_meetings(team_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (team_dir / "data/qmsum/dev.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def pg_server() -> str:
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        need(False, f"PostgreSQL at {PG_URL} is unreachable ({exc})")
    return PG_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, migrated database on the real server, dropped afterwards."""
    name = f"recap_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    from shared.db.session import _engines

    for key in [k for k in _engines if name in k[0]]:
        _engines.pop(key).dispose()
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'recap.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each database test runs on SQLite and on the real PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.ConnectionError as exc:
        need(False, f"Redis at {REDIS_URL} is unreachable ({exc})")
    return REDIS_URL


@pytest.fixture(scope="session")
def test_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Tiny random-weight models; with the real FLAN-T5 tokenizer where the team folder is present."""
    from recap.testmodels import Shape, init_test_models

    tokenizer = TEAM / "models/flan-t5-small"
    return init_test_models(
        tmp_path_factory.mktemp("models"), Shape.TINY, tokenizer if tokenizer.is_dir() else None
    )


NO_SLICES = "1000000"  # RECAP_SLICE_S: longer than any test's job


@pytest.fixture(autouse=True)
def _steady_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gate file a developer calibrated in this checkout (var/gate.json) must not steer the tests. Slicing long
    jobs follows the clock (a busy machine makes more visits), so a test counting a stage's rows would pass or
    fail by timing: only the tests of slicing slice (they set RECAP_SLICE_S)."""
    monkeypatch.setenv("RECAP_GATE_FILE", str(tmp_path_factory.mktemp("gate") / "gate.json"))
    monkeypatch.setenv("RECAP_SLICE_S", NO_SLICES)
    get_settings.cache_clear()


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """configure(DATABASE_URL=..., RECAP_GATE_THRESHOLD=...): environment for the code under test."""

    def apply(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The real SmolLM2-135M-Instruct GGUF file, installed by `make test` (`recap models install`)."""
    from inference.backends import bundled

    models = Path(os.environ.get("RECAP_MODELS_DIR") or REPO / "var" / "models")
    bundle = bundled.BUNDLES["smollm2-135m-instruct"]
    need(
        bundled.is_installed(bundle, models),
        f"the real small model is not installed in {models}: run `make test` (or `recap models install "
        "smollm2-135m-instruct`)",
    )
    return models / bundle.file


@pytest.fixture(scope="session")
def smollm2_llamacpp(smollm2: Path):
    """SmolLM2 in-process through llama.cpp, without decoding penalties, loaded once for the session."""
    from inference.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend.load("bundled:smollm2-135m-instruct", str(smollm2), n_ctx=2048, threads=2)
