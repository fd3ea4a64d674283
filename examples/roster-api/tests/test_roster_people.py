"""Organizations and people: create, read, keyset pages, and the answers to bad requests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from roster_testing import create


def pages(client: TestClient, path: str) -> list[dict[str, Any]]:
    """Every page of a list, following `next`."""
    seen: list[dict[str, Any]] = []
    next_path: str | None = path
    while next_path:
        response = client.get(next_path)
        assert response.status_code == 200, response.text
        seen.append(response.json())
        next_path = response.json()["next"]
    return seen


def test_create_and_get_an_organization(client: TestClient) -> None:
    created = client.post("/organizations", json={
        "id": "org_x", "name": "Harbour Chapel", "region": "eu-west",
        "config": {"plan": "pro", "seats": 12}})
    assert created.status_code == 201
    assert created.headers["location"] == "/organizations/org_x"
    assert client.get("/organizations/org_x").json() == created.json()
    assert created.json()["config"] == {"plan": "pro", "seats": 12}
    again = client.post("/organizations", json={"id": "org_x", "name": "Another"})
    assert again.status_code == 409
    assert client.post("/organizations", json={"id": "bad id!", "name": "x"}).status_code == 422


def test_create_and_get_a_person(client: TestClient, org: str) -> None:
    response = client.post("/people", json={
        "org_id": org, "name": "Søren Kierkegaard", "email": "soren@example.org",
        "roles": ["usher", "lead"], "timezone": "Europe/Copenhagen"})
    assert response.status_code == 201
    person = response.json()
    assert response.headers["location"] == f"/people/{person['id']}"
    assert person["is_active"] is True and person["language"] == "en"
    assert person["roles"] == ["usher", "lead"]
    assert client.get(f"/people/{person['id']}").json() == person


def test_people_come_in_keyset_pages(client: TestClient, org: str) -> None:
    create(client, "/organizations", {"id": "org_b", "name": "Other"})
    ids = [create(client, "/people", {"org_id": org if i % 3 else "org_b", "name": f"P{i}"})["id"]
           for i in range(7)]

    everyone = pages(client, "/people?limit=3")
    assert [len(page["items"]) for page in everyone] == [3, 3, 1]
    assert [item["id"] for page in everyone for item in page["items"]] == ids
    assert everyone[0]["next"] == f"/people?limit=3&after={ids[2]}"
    assert everyone[0]["next_after"] == ids[2]
    assert everyone[-1]["next"] is None and everyone[-1]["next_after"] is None

    mine = pages(client, f"/people?org_id={org}&limit=2")
    assert [item["id"] for page in mine for item in page["items"]] == [
        pid for i, pid in enumerate(ids) if i % 3]
    assert all(f"org_id={org}" in page["next"] for page in mine[:-1])


def test_page_size_is_bounded(client: TestClient) -> None:
    assert client.get("/people?limit=100").status_code == 200
    for bad in ("limit=101", "limit=0", "after=-1", "after=x"):
        assert client.get(f"/people?{bad}").status_code == 422, bad


def test_a_person_of_an_unknown_organization_is_a_422(client: TestClient) -> None:
    response = client.post("/people", json={"org_id": "org_nope", "name": "Ana"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "org_id"]
    assert error["msg"] == "organization 'org_nope' does not exist"


def test_invalid_people_are_422s(client: TestClient, org: str) -> None:
    for body in ({"org_id": org}, {"org_id": org, "name": ""},
                 {"org_id": org, "name": "A", "email": "not-an-email"},
                 {"org_id": org, "name": "A", "surprise": 1},
                 {"org_id": org, "name": "A", "roles": "usher"}):
        assert client.post("/people", json=body).status_code == 422, body
    assert client.get("/people").json()["items"] == []


def test_a_duplicate_email_is_a_409(client: TestClient, org: str) -> None:
    create(client, "/people", {"org_id": org, "name": "Ana", "email": "ana@example.org"})
    response = client.post("/people", json={"org_id": org, "name": "Other Ana",
                                             "email": "ana@example.org"})
    assert response.status_code == 409
    assert "ana@example.org" in response.json()["detail"]


def test_an_unknown_person_is_a_404(client: TestClient) -> None:
    response = client.get("/people/999")
    assert response.status_code == 404
    assert response.json() == {"detail": "person 999 not found"}
