# since 0002
"""people.phone: an optional contact number, indexed for look-ups.

Safe while the previous version keeps serving during a rolling deploy: a nullable column
without a default rewrites no rows, the previous version never reads or writes it, and on
PostgreSQL the index is built CONCURRENTLY, so writes to people are not blocked meanwhile.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("people", sa.Column("phone", sa.String(32), nullable=True))
    with op.get_context().autocommit_block():
        op.create_index("ix_people_phone", "people", ["phone"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_people_phone", table_name="people", postgresql_concurrently=True)
    op.drop_column("people", "phone")
