"""Self-reported actions (calls, posted letters) and idempotency keys on appeals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reported_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(64), nullable=False, index=True),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("supporter_name", sa.String(200)),
        sa.Column("supporter_email_lc", sa.String(320)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("appeals") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(128)))
        batch.create_unique_constraint(
            "uq_appeal_idempotency_key", ["campaign_id", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("appeals") as batch:
        batch.drop_constraint("uq_appeal_idempotency_key", type_="unique")
        batch.drop_column("idempotency_key")
    op.drop_table("reported_actions")
