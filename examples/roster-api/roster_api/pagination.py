"""Keyset pagination: pages ordered by primary key, the next one starting after the last key.

Unlike OFFSET, a page costs the same at any depth and rows written meanwhile neither repeat
nor vanish between pages.
"""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from fastapi import Request
from pydantic import BaseModel
from sqlalchemy.orm import InstrumentedAttribute, Session

from .schemas import Page

M = TypeVar("M", bound=BaseModel)


def keyset_page(session: Session, request: Request, query: sa.Select[Any],
                key: InstrumentedAttribute[Any], *, after: Any, limit: int,
                out: type[M]) -> Page[M]:
    """Up to `limit` rows of `query` with `key > after`, in key order, and the way on."""
    if after is not None:
        query = query.where(key > after)
    rows = session.scalars(query.order_by(key).limit(limit + 1)).all()
    items = [out.model_validate(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return Page[M](items=items, next_after=None, next=None)
    last = getattr(rows[limit - 1], key.key)
    url = request.url.include_query_params(after=last)
    return Page[M](items=items, next_after=last, next=f"{url.path}?{url.query}")
