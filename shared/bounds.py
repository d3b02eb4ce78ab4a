"""The limits on every blocking call to a datastore or a server, and on a worker that stops making progress.

A socket that waits forever (a half-open TCP connection after a restart, a stalled network path) is how a queue
system loses a night's work: every wait here ends, and the caller then retries, reconnects or is restarted.
`Settings` inherits these fields (read as RECAP_<NAME>, like every setting).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class Bounds(BaseSettings):
    # PostgreSQL (libpq, per connection). A connection that errored is discarded, never handed out again.
    db_connect_timeout_s: int = Field(5, ge=2)  # libpq rounds below 2 s up to 2
    # TCP keepalives find a peer that vanished while the connection idled: first probe after idle_s, then one
    # every interval_s, dead after count unanswered.
    db_keepalives_idle_s: int = Field(10, ge=1)
    db_keepalives_interval_s: int = Field(5, ge=1)
    db_keepalives_count: int = Field(3, ge=1)
    db_tcp_user_timeout_s: float = Field(20, ge=0)  # sent data unacknowledged this long: the link is dead
    # Server-side limits on the stages', sweeper's and API's statements (0: none); migrations run without them.
    db_statement_timeout_s: float = Field(30, ge=0)
    db_lock_timeout_s: float = Field(10, ge=0)
    # A statement with no answer this long after its statement timeout (a server that cannot even cancel it: a
    # stalled path) has its socket shut down by the client, so the call fails instead of waiting forever.
    db_answer_grace_s: float = Field(5, gt=0)
    db_pool_recycle_s: int = Field(1800, gt=0)  # pooled connections are replaced after this age

    # Redis: the broker (kombu), our own clients (heartbeats, sweeper, limits, metrics).
    redis_socket_timeout_s: float = Field(10, gt=1)  # the broker's reads and writes; above kombu's 1 s BRPOP
    # Our own clients' commands are short, and an API request must not wait long on them.
    redis_client_timeout_s: float = Field(2, gt=0)
    redis_connect_timeout_s: float = Field(5, gt=0)
    redis_keepalive: bool = True
    redis_health_check_interval_s: int = Field(10, ge=0)  # an idle connection is PINGed before reuse
    redis_retry_on_timeout: bool = True

    # HTTP: connect limits (the read limits are webhook_timeout_s and backend_timeout_s).
    webhook_connect_timeout_s: float = Field(5, gt=0)
    backend_connect_timeout_s: float = Field(10, gt=0)

    # Liveness is progress: a worker process whose task has run past the stage's time limit plus the kill grace,
    # or whose consumer took no message for this long while its queue waited and it had room, stops beating and
    # exits; its supervisor restarts it and the sweeper resends its claimed jobs.
    consumer_stall_s: float = Field(60, gt=0)
    # A worker's remote-control mailbox is checked (shared/mailbox.py) every control_check_s while it is idle: a
    # ping to itself, answered within control_timeout_s; control_failures unanswered in a row while Redis answers
    # and it exits (restarted).
    control_check_s: float = Field(10, gt=0)
    control_timeout_s: float = Field(3, gt=0)
    control_failures: int = Field(4, ge=1)
