"""Every attempt records the provider it went to, and every delivery the provider it goes
(or went) to: "sandbox" for the built-in rehearsal servers, never counted as an action.

Rows from before say nothing (NULL): they are counted as they were.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("provider", sa.String(16)))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("provider", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("provider")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("provider")
