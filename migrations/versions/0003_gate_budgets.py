"""gate policies and budgets: target rate per decision, period spend per scope, per-job reservations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gatedecision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target_rate", sa.Float(), nullable=True))
        batch_op.create_index(
            "ix_gate_decision_policy_score_created", ["policy", "score_name", "created_at"], unique=False
        )
    op.create_table(
        "budgetspend",
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spent_usd", sa.Numeric(18, 10), nullable=False),
        sa.PrimaryKeyConstraint("scope", "period_start"),
    )
    op.create_table(
        "budgetreservation",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount_usd", sa.Numeric(18, 10), nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )


def downgrade() -> None:
    op.drop_table("budgetreservation")
    op.drop_table("budgetspend")
    with op.batch_alter_table("gatedecision", schema=None) as batch_op:
        batch_op.drop_index("ix_gate_decision_policy_score_created")
        batch_op.drop_column("target_rate")
