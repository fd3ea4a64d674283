"""The FastAPI application: `create_app()` builds it from the environment (or given settings)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from . import api, debug
from .config import Settings
from .db import engine_for, session_factory
from .health import HealthCheck
from .revisions import expected_head

log = logging.getLogger("roster_api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    if settings.sentry_dsn:
        _init_sentry(settings)
    engine = engine_for(settings)
    head = expected_head()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="Roster API", version=settings.app_version, lifespan=lifespan)
    app.state.settings = settings
    app.state.sessions = session_factory(engine)
    health = HealthCheck(engine, drain_file=settings.drain_file,
                         db_timeout=settings.health_db_timeout)

    @app.get("/health")
    async def get_health() -> JSONResponse:
        report = await health.report()
        return JSONResponse(report.body, status_code=report.status_code,
                            headers={"Cache-Control": "no-store"})

    @app.get("/version")
    async def get_version() -> dict[str, str]:
        return {"version": settings.app_version, "alembic_head": head}

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable during %s %s: %s", request.method, request.url.path,
                    str(exc).strip().splitlines()[0])
        return JSONResponse({"detail": "the database is unavailable, try again shortly"},
                            status_code=503, headers={"Retry-After": "1"})

    app.include_router(api.router)
    if settings.debug_routes:
        app.include_router(debug.router)
    logging.getLogger("uvicorn.access").addFilter(_skip_health)
    return app


def _skip_health(record: logging.LogRecord) -> bool:
    """Keep the Docker healthcheck's request every second or two out of the access log."""
    args = record.args
    return not (isinstance(args, tuple) and len(args) > 2 and args[2] == "/health")


def _init_sentry(settings: Settings) -> None:
    import sentry_sdk

    sentry_sdk.init(dsn=settings.sentry_dsn, release=settings.app_version,
                    environment=settings.app_env or None, send_default_pii=False)
