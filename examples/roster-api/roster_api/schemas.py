"""Request and response bodies of the API (pydantic)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")

MAX_LIMIT = 100
DEFAULT_LIMIT = 50


def naive_utc(value: datetime) -> datetime:
    """Timestamps are stored without a zone, in UTC: an aware value is converted first."""
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


CENTS = Decimal("0.01")
UtcDateTime = Annotated[datetime, AfterValidator(naive_utc)]
Money = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2),
                  AfterValidator(lambda value: value.quantize(CENTS))]
"""NUMERIC(10, 2): at most two decimals, always answered with two (12.5 -> "12.50")."""
Text64 = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=255)]


class Page(BaseModel, Generic[T]):
    """One page of a list, oldest first. `next` is the path of the following page (the same
    query with `after` set), or null on the last page."""

    items: list[T]
    next_after: int | str | None = Field(
        description="pass as `after` to get the next page; null on the last page")
    next: str | None = Field(description="path and query of the next page")


class OrganizationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: Name
    region: Text64 | None = None
    config: dict[str, Any] | None = None


class OrganizationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    region: str | None
    config: dict[str, Any] | None
    created_at: datetime


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: Text64
    name: Name
    email: str | None = Field(default=None, max_length=255,
                              pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    roles: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = None
    is_active: bool = True
    timezone: Text64 | None = None
    language: str | None = Field(default="en", min_length=2, max_length=8)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 ()./-]{2,31}$")  # since 0002


class PersonOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: str
    name: str
    email: str | None
    roles: list[str] | None
    is_active: bool
    timezone: str | None
    language: str | None
    created_at: datetime
    phone: str | None  # since 0002


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: Text64
    type: Text64
    start_time: UtcDateTime
    end_time: UtcDateTime
    resource_id: Text64 | None = None
    extra_data: dict[str, Any] | None = None
    capacity: int | None = Field(default=None, ge=0)
    price: Money | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> EventIn:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: str
    type: str
    start_time: datetime
    end_time: datetime
    resource_id: str | None
    extra_data: dict[str, Any] | None
    capacity: int | None
    price: Decimal | None


AssignmentStatus = Literal["confirmed", "pending", "declined"]


class AssignmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: int = Field(ge=1)
    role: Text64 | None = None
    status: AssignmentStatus = "confirmed"
    score: float | None = Field(default=None, ge=0, le=10)


class AssignmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: int
    person_id: int
    role: str | None
    status: str
    score: float | None
    assigned_at: datetime
