"""The language of the pages an appeal was sent from, and where it came from.

``appeals.page_language``: the interface language the supporter used (the letter may be
in another); their receipt and notices are written in it. Null for appeals stored before
this revision and for API appeals that did not say: the letter's language is used.

``appeals.source``, ``utm_source``, ``utm_medium``, ``utm_campaign``: where the supporter
came from (``?source=`` and the UTM parameters on the campaign page, or the API's body),
for the report's ``sources`` breakdown. Each is a short slug or null.

``deliveries.target_fields``: the official's merge fields ({target.name}, {target.title})
in the letter's language, as JSON, filled in when the delivery is rendered. Null for
deliveries stored before this revision (their letters have no such fields).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SOURCES = ("source", "utm_source", "utm_medium", "utm_campaign")


def upgrade() -> None:
    with op.batch_alter_table("appeals") as batch:
        batch.add_column(sa.Column("page_language", sa.String(8)))
        for name in SOURCES:
            batch.add_column(sa.Column(name, sa.String(64)))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("target_fields", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("target_fields")
    with op.batch_alter_table("appeals") as batch:
        for name in reversed(SOURCES):
            batch.drop_column(name)
        batch.drop_column("page_language")
