"""Stages called as plain functions, with tiny random-weight models, on each database."""

import pytest


@pytest.fixture
def pipeline(db_url, test_models, configure):
    small, large = test_models
    configure(
        DATABASE_URL=db_url,
        RECAP_SMALL_MODEL=str(small),
        RECAP_LARGE_MODEL=str(large),
        RECAP_SUMMARY_TOKENS_MEDIUM="12",
        RECAP_CHUNK_SUMMARY_TOKENS="12",
        RECAP_DEVICE="cpu",
    )
    return db_url
