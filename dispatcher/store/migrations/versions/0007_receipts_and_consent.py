"""Receipts and consent: whether the supporter wants a receipt (on unless they opt out)
and agreed to hear from the organisation again (off unless they opt in); the receipts
and failure notices to send them, queued with the outcome that calls for one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("appeals") as batch:
        batch.add_column(
            sa.Column("receipt", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("contact_ok", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "receipts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("appeal_id", sa.String(32), sa.ForeignKey("appeals.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        # The failed delivery a failure notice is about; 0 for the receipt itself.
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("appeal_id", "kind", "delivery_id", name="uq_receipt_once"),
    )
    op.create_index("ix_receipts_due", "receipts", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_receipts_due", table_name="receipts")
    op.drop_table("receipts")
    with op.batch_alter_table("appeals") as batch:
        batch.drop_column("contact_ok")
        batch.drop_column("receipt")
