"""Supporters, appeals, deliveries (the queue) and attempts.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "supporters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email_lc", sa.String(320), nullable=False, unique=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "appeals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("campaign_id", sa.String(64), nullable=False, index=True),
        sa.Column("supporter_id", sa.Integer, sa.ForeignKey("supporters.id"), nullable=False),
        sa.Column("supporter_name", sa.String(200), nullable=False),
        sa.Column("supporter_country", sa.String(64)),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("own_message", sa.Boolean, nullable=False),
        sa.Column("tweet", sa.Text),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "appeal_id", sa.String(32), sa.ForeignKey("appeals.id"), nullable=False, index=True
        ),
        sa.Column("campaign_id", sa.String(64), nullable=False),
        sa.Column("supporter_email_lc", sa.String(320), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("target_name", sa.String(200), nullable=False),
        sa.Column("salutation", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("lease_until", TS),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("provider_ref", sa.String(128)),
        sa.Column("last_error_class", sa.String(64)),
        sa.Column("last_error_code", sa.String(64)),
        sa.Column("last_error_message", sa.Text),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint(
            "campaign_id", "supporter_email_lc", "target_id", "channel", name="uq_delivery_once"
        ),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_deliveries_line", "deliveries", ["channel", "address", "status", "id"])
    op.create_index("ix_deliveries_campaign_updated", "deliveries", ["campaign_id", "updated_at"])
    op.create_index("ix_deliveries_updated", "deliveries", ["updated_at", "id"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("outcome", sa.String(32)),
        sa.Column("error_class", sa.String(64)),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text),
        sa.Column("provider_ref", sa.String(128)),
        sa.Column("response_summary", sa.Text),
        sa.UniqueConstraint("delivery_id", "number", name="uq_attempt_number"),
    )


def downgrade() -> None:
    op.drop_table("attempts")
    op.drop_table("deliveries")
    op.drop_table("appeals")
    op.drop_table("supporters")
