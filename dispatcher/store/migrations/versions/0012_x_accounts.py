"""X posts from the supporter's own account, and hand-offs.

``x_accounts``: one row per X account a supporter connects on a campaign page: the hash
of the connection's id, the hash of the authorisation's ``state``, and ``sealed``, the
PKCE verifier and then the tokens, encrypted under a key derived from
DISPATCHER_SECRET_KEY; ``appeal_id`` once the appeal it was sent with is stored. The row
goes when that appeal's X deliveries settle (the campaign closing settles them) or the
supporter's data goes, and unused after the connect wait.

``pacing.remaining`` and ``pacing.resets_at``: what X last said is left of a limit (an
account's, the app's) and when it resets; each post takes one first, so none runs into
X's 429.

``deliveries.handoff_opened_at``: when the supporter first opened the prepared post of a
handed-off delivery through our link.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "x_accounts",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("appeal_id", sa.String(32), sa.ForeignKey("appeals.id"), unique=True),
        sa.Column("state_hash", sa.String(64), unique=True),
        sa.Column("sealed", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("handoff_opened_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("pacing") as batch:
        batch.add_column(sa.Column("remaining", sa.Integer))
        batch.add_column(sa.Column("resets_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("pacing") as batch:
        batch.drop_column("resets_at")
        batch.drop_column("remaining")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("handoff_opened_at")
    op.drop_table("x_accounts")
