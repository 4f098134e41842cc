"""Supporters' privacy: an appeal records whether its supporter asked that officials may
reply to them (``reply_to``) and when they confirmed it through the signed link sent to
their address (``confirmed_at``); addresses whose owner said "this wasn't me" are kept
only as a keyed hash, so nothing is ever sent in their name again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("appeals") as batch:
        batch.add_column(
            sa.Column("reply_to", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True)))
    op.create_table(
        "suppressed_addresses",
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("suppressed_addresses")
    with op.batch_alter_table("appeals") as batch:
        batch.drop_column("confirmed_at")
        batch.drop_column("reply_to")
