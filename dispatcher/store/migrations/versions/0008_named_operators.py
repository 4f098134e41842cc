"""Named operators and their audit log: a session remembers which operator signed in, and
every sign-in, retry, cancel and export is recorded with who did it and when. Sessions
open at the upgrade end (they name no operator).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Sessions from before say nobody's name: they end, and each operator signs in again.
    op.execute("DELETE FROM operator_sessions")
    with op.batch_alter_table("operator_sessions") as batch:
        batch.add_column(sa.Column("operator", sa.String(64), nullable=False))
    op.create_table(
        "operator_audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("address", sa.String(64)),
    )
    op.create_index("ix_operator_audit_at", "operator_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_operator_audit_at", table_name="operator_audit")
    op.drop_table("operator_audit")
    with op.batch_alter_table("operator_sessions") as batch:
        batch.drop_column("operator")
