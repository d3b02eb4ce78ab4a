"""long meetings: summary length and format override per job; chunking facts per summary

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 16:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("requested_format", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "summary_length",
                sqlmodel.sql.sqltypes.AutoString(length=8),
                nullable=False,
                server_default="medium",  # jobs from before this migration asked for the default
            )
        )
    with op.batch_alter_table("summary", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chunks", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("levels", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("calls", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("truncation_ratio", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("summary", schema=None) as batch_op:
        for column in ("truncation_ratio", "calls", "levels", "chunks"):
            batch_op.drop_column(column)
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("summary_length")
        batch_op.drop_column("requested_format")
