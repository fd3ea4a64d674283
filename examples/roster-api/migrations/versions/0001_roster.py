"""The roster schema, as the app's roster.db had it before Alembic.

Adopts a database that already holds the roster tables without an `alembic_version` (a
roster.db made before Alembic): when every table is there (with at least these columns) it
creates nothing; when none is, it creates them all; anything in between is refused.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _schema() -> sa.MetaData:
    """The tables of revision 0001 (frozen here: later revisions change them, not this)."""
    meta = sa.MetaData()
    sa.Table(
        "organizations", meta,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("region", sa.String(64)),
        sa.Column("config", Json),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    sa.Table(
        "people", meta,
        sa.Column("id", BigInt, primary_key=True),
        sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), unique=True),
        sa.Column("roles", Json),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("timezone", sa.String(64)),
        sa.Column("language", sa.String(8), server_default="en"),
        sa.Column("created_at", sa.DateTime, nullable=False,
                  server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Index("ix_people_org", "org_id"),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "teams", meta,
        sa.Column("id", BigInt, primary_key=True),
        sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text),
    )
    sa.Table(
        "team_members", meta,
        sa.Column("team_id", BigInt, sa.ForeignKey("teams.id", ondelete="CASCADE"),
                  primary_key=True, autoincrement=False),
        sa.Column("person_id", BigInt, sa.ForeignKey("people.id", ondelete="CASCADE"),
                  primary_key=True, autoincrement=False),
        sa.Column("joined_at", sa.DateTime),
    )
    sa.Table(
        "events", meta,
        sa.Column("id", BigInt, primary_key=True),
        sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("start_time", sa.DateTime, nullable=False),
        sa.Column("end_time", sa.DateTime, nullable=False),
        sa.Column("resource_id", sa.String(64)),
        sa.Column("extra_data", Json),
        sa.Column("capacity", BigInt),
        sa.Column("price", sa.Numeric(10, 2)),
        sa.Index("ix_events_org_start", "org_id", "start_time"),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "assignments", meta,
        sa.Column("id", BigInt, primary_key=True),
        sa.Column("event_id", BigInt, sa.ForeignKey("events.id"), nullable=False),
        sa.Column("person_id", BigInt, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("role", sa.String(64)),
        sa.Column("status", sa.String(32), nullable=False, server_default="confirmed"),
        sa.Column("score", sa.Float),
        sa.Column("assigned_at", sa.DateTime, nullable=False),
        sa.Index("ix_assignments_event", "event_id"),
        sa.Index("ix_assignments_person", "person_id"),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "availability_exceptions", meta,
        sa.Column("id", BigInt, primary_key=True),
        sa.Column("person_id", BigInt, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("exception_date", sa.Date, nullable=False),
        sa.Column("reason", sa.Text),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "audit_logs", meta,
        sa.Column("id", BigInt, primary_key=True),
        sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id")),
        sa.Column("actor_id", BigInt, sa.ForeignKey("people.id")),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("payload", Json),
        sa.Column("ip_address", sa.String(45)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    sa.Table(
        "attachments", meta,
        sa.Column("id", BigInt, primary_key=True),
        sa.Column("event_id", BigInt, sa.ForeignKey("events.id")),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary),
        sqlite_autoincrement=True,
    )
    return meta


def upgrade() -> None:
    bind = op.get_bind()
    schema = _schema()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    present = [name for name in schema.tables if name in existing]
    if not present:
        schema.create_all(bind)
        return
    missing = [name for name in schema.tables if name not in existing]
    if missing:
        raise CommandError(
            f"cannot adopt this database: it has the roster tables {', '.join(present)} but "
            f"not {', '.join(missing)}. Point DATABASE_URL at an empty database or at a "
            "complete roster database (restore the missing tables from a backup first)")
    gaps = []
    for name, table in schema.tables.items():
        have = {column["name"] for column in inspector.get_columns(name)}
        gaps += [f"{name}.{column.name}" for column in table.columns if column.name not in have]
    if gaps:
        raise CommandError(
            "cannot adopt this database: its roster tables lack the columns "
            f"{', '.join(gaps)}. It is not a roster database this app can use as it is")


def downgrade() -> None:
    raise CommandError(
        "revision 0001 is the roster schema itself: downgrading it would drop every table "
        "and all data. Restore a backup or drop the tables by hand if that is what you want")
