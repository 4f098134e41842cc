"""Self-reported actions count once per supporter, official and kind: a unique index on
(campaign, email, target, kind). Rows from before, without an email, stay as they are
(NULLs are distinct in a unique index on both databases).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ux_reported_once",
        "reported_actions",
        ["campaign_id", "supporter_email_lc", "target_id", "kind"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_reported_once", table_name="reported_actions")
