"""The roster schema: the tables of the app's `roster.db`, on SQLite and on PostgreSQL.

On SQLite the columns are declared exactly as the app's pre-Alembic `roster.db` declares
them (INTEGER, DATETIME, JSON, BOOLEAN, BLOB...), so such a file is a database of this app.
On PostgreSQL each type is what `inv db.migrate-from-sqlite` creates from that file:
INTEGER -> bigint, JSON -> jsonb, DATETIME -> timestamp without time zone, BLOB -> bytea,
so the migrator can copy a `roster.db` into the schema Alembic made, column by column.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""bigint on PostgreSQL; INTEGER on SQLite, where only `INTEGER PRIMARY KEY` is the rowid."""
Json = sa.JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    region: Mapped[str | None] = mapped_column(sa.String(64))
    config: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (
        sa.Index("ix_people_org", "org_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    org_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    roles: Mapped[list[str] | None] = mapped_column(Json)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    language: Mapped[str | None] = mapped_column(sa.String(8), server_default="en")
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime, server_default=sa.text("CURRENT_TIMESTAMP"))
    phone: Mapped[str | None] = mapped_column(sa.String(32), index=True)  # since 0002


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    org_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        BigInt, sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True,
        autoincrement=False)
    person_id: Mapped[int] = mapped_column(
        BigInt, sa.ForeignKey("people.id", ondelete="CASCADE"), primary_key=True,
        autoincrement=False)
    joined_at: Mapped[datetime | None] = mapped_column(sa.DateTime)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_org_start", "org_id", "start_time"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    org_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("organizations.id"))
    type: Mapped[str] = mapped_column(sa.String(64))
    start_time: Mapped[datetime] = mapped_column(sa.DateTime)
    end_time: Mapped[datetime] = mapped_column(sa.DateTime)
    resource_id: Mapped[str | None] = mapped_column(sa.String(64))
    extra_data: Mapped[dict[str, Any] | None] = mapped_column(Json)
    capacity: Mapped[int | None] = mapped_column(BigInt)
    price: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (
        sa.Index("ix_assignments_event", "event_id"),
        sa.Index("ix_assignments_person", "person_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("events.id"))
    person_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("people.id"))
    role: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(32), server_default="confirmed")
    score: Mapped[float | None] = mapped_column(sa.Float)
    assigned_at: Mapped[datetime] = mapped_column(sa.DateTime)


class AvailabilityException(Base):
    __tablename__ = "availability_exceptions"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInt, sa.ForeignKey("people.id"))
    exception_date: Mapped[date] = mapped_column(sa.Date)
    reason: Mapped[str | None] = mapped_column(sa.Text)


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    org_id: Mapped[str | None] = mapped_column(sa.String(64), sa.ForeignKey("organizations.id"))
    actor_id: Mapped[int | None] = mapped_column(BigInt, sa.ForeignKey("people.id"))
    action: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict[str, Any] | None] = mapped_column(Json)
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    event_id: Mapped[int | None] = mapped_column(BigInt, sa.ForeignKey("events.id"))
    filename: Mapped[str] = mapped_column(sa.String(255))
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
