"""key rotation: a tenant's previous key, valid until its grace period ends

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenant") as batch:  # batch: SQLite cannot ALTER a table in place
        batch.add_column(
            sa.Column("previous_key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch.add_column(sa.Column("previous_key_until", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_tenant_previous_key_hash", ["previous_key_hash"])


def downgrade() -> None:
    with op.batch_alter_table("tenant") as batch:
        batch.drop_index("ix_tenant_previous_key_hash")
        batch.drop_column("previous_key_until")
        batch.drop_column("previous_key_hash")
