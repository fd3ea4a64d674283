"""The roster API: organizations, people, events and assignments.

Lists are keyset-paginated (`limit` <= 100, `after` = the last key of the previous page).
Creating answers 201 with the new object and its `Location`. A body naming something that
does not exist (an organization, a person) is a 422 like any invalid field; a path naming
something that does not exist is a 404; a duplicate (organization id, email) is a 409.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import models, schemas
from .pagination import keyset_page
from .schemas import DEFAULT_LIMIT, MAX_LIMIT, Page, utc_now


def refuse_when_faulty(request: Request) -> None:
    """`ROSTER_FAULT=api`: every API route fails while /health passes (the deploy's
    verification must catch such a build before it takes traffic)."""
    if request.app.state.settings.fault == "api":
        raise HTTPException(500, "ROSTER_FAULT=api: this build fails its API on purpose")


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


router = APIRouter(dependencies=[Depends(refuse_when_faulty)])
SessionDep = Annotated[Session, Depends(get_session)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}")]
AfterId = Annotated[int | None, Query(ge=0, description="the `next_after` of the previous page")]
OrgFilter = Annotated[str | None, Query(max_length=64, description="only this organization's")]


@router.get("/organizations", response_model=Page[schemas.OrganizationOut])
def list_organizations(request: Request, session: SessionDep, limit: Limit = DEFAULT_LIMIT,
                       after: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    return keyset_page(session, request, sa.select(models.Organization),
                       models.Organization.id, after=after, limit=limit,
                       out=schemas.OrganizationOut)


@router.post("/organizations", status_code=201, response_model=schemas.OrganizationOut)
def create_organization(body: schemas.OrganizationIn, session: SessionDep,
                        response: Response) -> Any:
    if session.get(models.Organization, body.id) is not None:
        raise HTTPException(409, f"organization {body.id!r} already exists")
    org = models.Organization(**body.model_dump(), created_at=utc_now())
    return _insert(session, org, f"organization {body.id!r} already exists",
                   response, "/organizations/{}")


@router.get("/organizations/{org_id}", response_model=schemas.OrganizationOut)
def get_organization(org_id: str, session: SessionDep) -> Any:
    return _found(session, models.Organization, org_id, "organization")


@router.get("/people", response_model=Page[schemas.PersonOut])
def list_people(request: Request, session: SessionDep, limit: Limit = DEFAULT_LIMIT,
                after: AfterId = None, org_id: OrgFilter = None,
                phone: Annotated[str | None, Query(max_length=32)] = None,  # since 0002
                ) -> Any:
    query = _of_org(models.Person, org_id)
    query = query.where(models.Person.phone == phone) if phone else query  # since 0002
    return keyset_page(session, request, query, models.Person.id, after=after, limit=limit,
                       out=schemas.PersonOut)


@router.post("/people", status_code=201, response_model=schemas.PersonOut)
def create_person(body: schemas.PersonIn, session: SessionDep, response: Response) -> Any:
    _require(session, models.Organization, body.org_id, "org_id", "organization")
    if body.email and session.scalar(
            sa.select(models.Person.id).where(models.Person.email == body.email)):
        raise HTTPException(409, f"a person with the email {body.email!r} already exists")
    person = models.Person(**body.model_dump(), created_at=utc_now())
    return _insert(session, person, f"a person with the email {body.email!r} already exists",
                   response, "/people/{}")


@router.get("/people/{person_id}", response_model=schemas.PersonOut)
def get_person(person_id: int, session: SessionDep) -> Any:
    return _found(session, models.Person, person_id, "person")


@router.get("/events", response_model=Page[schemas.EventOut])
def list_events(request: Request, session: SessionDep, limit: Limit = DEFAULT_LIMIT,
                after: AfterId = None, org_id: OrgFilter = None) -> Any:
    return keyset_page(session, request, _of_org(models.Event, org_id), models.Event.id,
                       after=after, limit=limit, out=schemas.EventOut)


@router.post("/events", status_code=201, response_model=schemas.EventOut)
def create_event(body: schemas.EventIn, session: SessionDep, response: Response) -> Any:
    _require(session, models.Organization, body.org_id, "org_id", "organization")
    return _insert(session, models.Event(**body.model_dump()),
                   "the event conflicts with an existing one", response, "/events/{}")


@router.get("/events/{event_id}", response_model=schemas.EventOut)
def get_event(event_id: int, session: SessionDep) -> Any:
    return _found(session, models.Event, event_id, "event")


@router.get("/events/{event_id}/assignments", response_model=Page[schemas.AssignmentOut])
def list_assignments(event_id: int, request: Request, session: SessionDep,
                     limit: Limit = DEFAULT_LIMIT, after: AfterId = None) -> Any:
    _found(session, models.Event, event_id, "event")
    query = sa.select(models.Assignment).where(models.Assignment.event_id == event_id)
    return keyset_page(session, request, query, models.Assignment.id, after=after,
                       limit=limit, out=schemas.AssignmentOut)


@router.post("/events/{event_id}/assignments", status_code=201,
             response_model=schemas.AssignmentOut)
def create_assignment(event_id: int, body: schemas.AssignmentIn, session: SessionDep) -> Any:
    _found(session, models.Event, event_id, "event")
    _require(session, models.Person, body.person_id, "person_id", "person")
    assignment = models.Assignment(**body.model_dump(), event_id=event_id,
                                   assigned_at=utc_now())
    return _insert(session, assignment, "the assignment conflicts with an existing one")


def _of_org(model: type[models.Person | models.Event], org_id: str | None) -> sa.Select[Any]:
    query = sa.select(model)
    return query if org_id is None else query.where(model.org_id == org_id)


def _found(session: Session, model: type[models.Base], key: Any, what: str) -> Any:
    row = session.get(model, key)
    if row is None:
        raise HTTPException(404, f"{what} {key!r} not found")
    return row


def _require(session: Session, model: type[models.Base], key: Any, field: str,
             what: str) -> None:
    """A 422 naming `field` when the body references a `what` that does not exist."""
    if session.get(model, key) is None:
        raise RequestValidationError([{
            "type": "missing_reference", "loc": ("body", field),
            "msg": f"{what} {key!r} does not exist", "input": key,
        }])


def _insert(session: Session, row: models.Base, conflict: str,
            response: Response | None = None, location: str = "") -> models.Base:
    """Insert `row` and return it; `Location` is `location` with the new row's key. A
    constraint that fails meanwhile (a concurrent duplicate) is a 409 saying `conflict`."""
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(409, conflict) from None
    key = sa.inspect(row).identity
    if response is not None and location and key is not None:
        response.headers["Location"] = location.format(*key)
    return row
