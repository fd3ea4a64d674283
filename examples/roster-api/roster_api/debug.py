"""Test-only routes, mounted only with `ROSTER_DEBUG_ROUTES=1`: a slow request to keep in
flight during a graceful-shutdown test (and how many are sleeping in this worker process, so
a test knows when one is in flight), and an unhandled error for error reporting."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

router = APIRouter(prefix="/debug")
_sleeping = 0


@router.get("/sleep")
async def sleep(seconds: Annotated[float, Query(ge=0, le=60)] = 1.0) -> dict[str, float]:
    global _sleeping
    _sleeping += 1
    try:
        await asyncio.sleep(seconds)
    finally:
        _sleeping -= 1
    return {"slept": seconds}


@router.get("/sleeping")
async def sleeping() -> dict[str, int]:
    return {"sleeping": _sleeping}


@router.get("/error")
async def error() -> None:
    raise RuntimeError("roster-api debug error: raised on purpose by /debug/error")
