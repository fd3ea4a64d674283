"""The fault variant the deploy's verification must catch, and the test-only routes."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from roster_testing import make_settings

from roster_api.main import create_app


def test_api_fault_fails_every_api_route_while_health_passes(db: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(db, tmp_path, ROSTER_FAULT="api"))) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/version").status_code == 200
        for path in ("/people", "/events", "/organizations", "/people/1",
                     "/events/1/assignments"):
            response = client.get(path)
            assert response.status_code == 500, path
            assert "ROSTER_FAULT=api" in response.json()["detail"]
        assert client.post("/people", json={"org_id": "x", "name": "y"}).status_code == 500


def test_debug_routes_exist_only_when_enabled(db: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(db, tmp_path))) as client:
        assert client.get("/debug/sleep", params={"seconds": 0}).status_code == 404
    env = {"ROSTER_DEBUG_ROUTES": "1"}
    with TestClient(create_app(make_settings(db, tmp_path, **env)),
                    raise_server_exceptions=False) as client:
        assert client.get("/debug/sleep", params={"seconds": 0}).json() == {"slept": 0}
        assert client.get("/debug/sleeping").json() == {"sleeping": 0}
        assert client.get("/debug/sleep", params={"seconds": 61}).status_code == 422
        assert client.get("/debug/error").status_code == 500
