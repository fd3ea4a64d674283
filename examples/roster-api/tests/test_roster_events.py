"""Events and their assignments."""

from __future__ import annotations

from fastapi.testclient import TestClient
from roster_testing import create

SERVICE = {"type": "service", "start_time": "2025-03-02T10:00:00",
           "end_time": "2025-03-02T11:30:00"}


def test_create_and_get_an_event(client: TestClient, org: str) -> None:
    response = client.post("/events", json={
        **SERVICE, "org_id": org, "resource_id": "main-hall", "capacity": 40,
        "price": "12.5", "extra_data": {"notes": "bring 'snacks'"}})
    assert response.status_code == 201
    event = response.json()
    assert response.headers["location"] == f"/events/{event['id']}"
    assert event["price"] == "12.50"
    assert event["extra_data"] == {"notes": "bring 'snacks'"}
    assert client.get(f"/events/{event['id']}").json() == event


def test_aware_times_are_stored_as_utc(client: TestClient, org: str) -> None:
    event = create(client, "/events", {"org_id": org, "type": "rehearsal",
                                       "start_time": "2025-03-02T10:00:00+02:00",
                                       "end_time": "2025-03-02T11:00:00+02:00"})
    assert (event["start_time"], event["end_time"]) == ("2025-03-02T08:00:00",
                                                        "2025-03-02T09:00:00")


def test_invalid_events_are_422s(client: TestClient, org: str) -> None:
    bad = [
        {**SERVICE, "org_id": org, "end_time": SERVICE["start_time"]},
        {**SERVICE, "org_id": org, "capacity": -1},
        {**SERVICE, "org_id": org, "price": "1.234"},
        {**SERVICE, "org_id": org, "start_time": "yesterday"},
        {**SERVICE, "org_id": "org_nope"},
    ]
    for body in bad:
        assert client.post("/events", json=body).status_code == 422, body
    assert client.get("/events").json()["items"] == []


def test_events_list_by_organization(client: TestClient, org: str) -> None:
    create(client, "/organizations", {"id": "org_b", "name": "Other"})
    mine = create(client, "/events", {**SERVICE, "org_id": org})
    create(client, "/events", {**SERVICE, "org_id": "org_b"})
    assert len(client.get("/events").json()["items"]) == 2
    assert client.get(f"/events?org_id={org}").json()["items"] == [mine]


def test_assign_people_to_an_event(client: TestClient, org: str) -> None:
    event = create(client, "/events", {**SERVICE, "org_id": org})
    people = [create(client, "/people", {"org_id": org, "name": f"P{i}"}) for i in range(3)]
    path = f"/events/{event['id']}/assignments"
    made = [create(client, path, {"person_id": p["id"], "role": "usher", "score": 7.5})
            for p in people]
    assert made[0]["status"] == "confirmed" and made[0]["event_id"] == event["id"]
    assert made[0]["assigned_at"]

    first = client.get(f"{path}?limit=2").json()
    assert [a["id"] for a in first["items"]] == [made[0]["id"], made[1]["id"]]
    rest = client.get(first["next"]).json()
    assert [a["id"] for a in rest["items"]] == [made[2]["id"]] and rest["next"] is None


def test_assignment_references_are_checked(client: TestClient, org: str) -> None:
    event = create(client, "/events", {**SERVICE, "org_id": org})
    person = create(client, "/people", {"org_id": org, "name": "Ana"})

    missing_event = client.post("/events/999/assignments", json={"person_id": person["id"]})
    assert missing_event.status_code == 404
    assert client.get("/events/999/assignments").status_code == 404

    missing_person = client.post(f"/events/{event['id']}/assignments", json={"person_id": 999})
    assert missing_person.status_code == 422
    assert missing_person.json()["detail"][0]["loc"] == ["body", "person_id"]

    bad_status = client.post(f"/events/{event['id']}/assignments",
                             json={"person_id": person["id"], "status": "maybe"})
    assert bad_status.status_code == 422
    assert client.get(f"/events/{event['id']}/assignments").json()["items"] == []
