"""How a delivery whose earlier try had an unknown outcome was settled; attempts paused
by a provider's rate limit; intake rate counts and send pacing shared by every process.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("settlement", sa.String(32)))
        batch.add_column(
            sa.Column("paused_attempts", sa.Integer, nullable=False, server_default="0")
        )
    op.create_table(
        "rate_counts",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("window", sa.Integer, primary_key=True),
        sa.Column("hits", sa.Integer, nullable=False),
    )

    op.create_table(
        "pacing",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("tat", sa.DateTime(timezone=True)),
        sa.Column("paused_until", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("pacing")
    op.drop_table("rate_counts")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("paused_attempts")
        batch.drop_column("settlement")
