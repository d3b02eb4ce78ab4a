"""reliability: claims with their owner, stall sweeps, retries, a ledger row per attempt, the outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 11:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True)
        )
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sweeps", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("requeued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("error_stage", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
    with op.batch_alter_table("stagerun", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
    # Rows from before this migration that were closed are the results their jobs kept.
    op.execute("UPDATE stagerun SET outcome = 'ok' WHERE finished_at IS NOT NULL")
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("task", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_job_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_created_at"))
    op.drop_table("outbox")
    with op.batch_alter_table("stagerun", schema=None) as batch_op:
        batch_op.drop_column("outcome")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("error_stage")
        batch_op.drop_column("requeued_at")
        batch_op.drop_column("sweeps")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
