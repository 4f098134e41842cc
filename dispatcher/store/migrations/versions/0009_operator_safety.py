"""Operator safety: each session keeps a keyed fingerprint of the token it was opened with
(an HMAC under the secret key, never the token), so changing an operator's token ends the
sessions it opened. Sessions from before carry no fingerprint: they end at the upgrade.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM operator_sessions")
    with op.batch_alter_table("operator_sessions") as batch:
        batch.add_column(sa.Column("token_fingerprint", sa.String(64), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("operator_sessions") as batch:
        batch.drop_column("token_fingerprint")
