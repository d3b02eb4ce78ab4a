"""What counts as a stuck worker process: a task past the stage's limit plus twice the grace, or a consumer that
took nothing while its queue waited and it had room."""

from __future__ import annotations

import time

import pytest

from shared import progress
from shared.config import Settings

SETTINGS = Settings(stage_time_limit_s=10, stage_kill_grace_s=2, consumer_stall_s=5)


@pytest.fixture(autouse=True)
def fresh() -> None:
    progress.forget_consumer()


def test_a_task_within_its_limit_is_progress_and_one_past_it_is_stuck() -> None:
    with progress.working():
        assert progress.stuck(SETTINGS, queued=0) is None
        progress._progress.busy_since = time.monotonic() - 13  # 10 + 2 x 2 = 14 s allowed
        assert progress.stuck(SETTINGS, queued=0) is None
        progress._progress.busy_since = time.monotonic() - 15
        why = progress.stuck(SETTINGS, queued=0)
        assert why is not None and "limit 14s" in why
    assert progress.stuck(SETTINGS, queued=0) is None  # the task ended


def test_a_consumer_with_room_that_takes_nothing_while_its_queue_waits_is_stuck() -> None:
    progress.consuming(["small"], room=lambda: True)
    assert progress.stuck(SETTINGS, queued=3) is None  # the wait starts now
    progress._progress.waiting_since = progress._progress.last_taken = time.monotonic() - 6
    why = progress.stuck(SETTINGS, queued=3)
    assert why is not None and "3 waited in small" in why


def test_an_empty_queue_a_full_consumer_or_a_new_message_is_not_stuck() -> None:
    room = [True]
    progress.consuming(["gate"], room=lambda: room[0])
    long_ago = time.monotonic() - 60
    progress._progress.last_taken = long_ago
    assert progress.stuck(SETTINGS, queued=0) is None  # nothing to take
    room[0] = False
    assert progress.stuck(SETTINGS, queued=9) is None  # its pool is busy with what it took
    room[0] = True
    progress._progress.waiting_since = long_ago
    progress.took()  # a message arrived
    assert progress.stuck(SETTINGS, queued=9) is None


def test_a_pool_child_watches_no_queue() -> None:
    progress.consuming(["ingest"], room=lambda: True)
    progress.forget_consumer()
    assert progress.watched_queues() == []
    assert progress.stuck(SETTINGS, queued=100) is None


def test_a_deaf_mailbox_is_stuck_only_while_no_task_runs() -> None:
    progress.consuming(["notify"], room=lambda: True)
    progress.deafened("its mailbox left 4 pings in a row unanswered while Redis answered")
    why = progress.stuck(SETTINGS, queued=0)
    assert why is not None and "4 pings" in why
    with progress.working():
        assert progress.stuck(SETTINGS, queued=0) is None  # a solo worker cannot answer while its task runs
        assert progress.quiet() is None
    progress.deafened(None)
    assert progress.stuck(SETTINGS, queued=0) is None
