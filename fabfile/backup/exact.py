"""The plan of an exact restore, as `client.sh` prints it before it changes anything: what it
drops first (everything in the schemas the app uses that is not to come back from the
backup), and what the database user may not do, each turned into its fix. Pure.

A restore leaves the database holding exactly what the backup holds, so that the app's
next migration (`alembic upgrade head`) meets the schema it expects, not leftovers of a
later revision. It works without superuser or database ownership (a managed database): the
user needs to own what it drops (or the schema holding it), CREATE on the database for
schemas the backup adds, CREATE and USAGE on existing schemas the backup fills, and the
right to create the backup's extensions that are missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class RestorePlan:
    drops: tuple[tuple[str, str], ...] = ()
    """(kind, name) of each object dropped first, schemas and extensions included."""
    foreign: tuple[tuple[str, str, str], ...] = ()
    """(kind, name, owner) of each object to drop that belongs to a role the user is not."""
    needs: tuple[tuple[str, str, str], ...] = ()
    """(what, name, detail): `create-schema`, `create-in`, `extension` (detail `privilege`
    or `unavailable`)."""

    @property
    def refused(self) -> bool:
        return bool(self.foreign or self.needs)


def parse(stdout: str) -> RestorePlan:
    """The `plan<TAB>...` lines of `client.sh`'s plan (other lines are ignored)."""
    drops: list[tuple[str, str]] = []
    foreign: list[tuple[str, str, str]] = []
    needs: list[tuple[str, str, str]] = []
    for line in stdout.splitlines():
        fields = line.split("\t")
        if fields[0] != "plan" or len(fields) < 4:
            continue
        what, kind, name = fields[1:4]
        detail = fields[4] if len(fields) > 4 else ""
        if what == "drop":
            drops.append((kind, name))
        elif what == "foreign":
            foreign.append((kind, name, detail))
        elif what == "need":
            needs.append((kind, name, detail))
    return RestorePlan(tuple(drops), tuple(foreign), tuple(needs))


def named(items: tuple[tuple[str, str], ...] | list[tuple[str, str]], limit: int = 8) -> str:
    """`table public.a, view public.v and 3 more`."""
    shown = ", ".join(f"{kind} {name}" for kind, name in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _ident(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def refusal(plan: RestorePlan, *, user: str, db: str, backup_id: str, target: str) -> str:
    """Why the user cannot restore exactly, each reason with the statement that fixes it."""
    who = _ident(user)
    lines = [f"an exact restore of backup {backup_id} into {target} needs what the database "
             f"user {user} may not do, so nothing was changed. Fix these, then run it again:"]
    for kind, name, owner in plan.foreign:
        lines.append(f"{kind} {name} belongs to role {owner}, so {user} cannot drop it: have "
                     f"{owner} (or a superuser) run `ALTER {kind.upper()} {name} OWNER TO "
                     f"{who};`, or drop it")
    for what, name, detail in plan.needs:
        if what == "create-schema":
            lines.append(f"the backup creates schema {name}: `GRANT CREATE ON DATABASE "
                         f"{_ident(db)} TO {who};`")
        elif what == "create-in":
            lines.append(f"the backup puts objects in schema {name}: `GRANT USAGE, CREATE ON "
                         f"SCHEMA {_ident(name)} TO {who};`")
        elif what == "extension" and detail == "unavailable":
            lines.append(f"the backup holds extension {name}, which this server does not "
                         "offer: install it there (PostgreSQL's contrib package or the "
                         "extension's own), or restore into another server")
        elif what == "extension":
            lines.append(f"the backup holds extension {name}, which {user} may not create: "
                         f"have a superuser run `CREATE EXTENSION {_ident(name)};` in {db}")
        else:
            lines.append(f"{what} {name} {detail}".strip())
    return "\n  ".join(lines)


def not_empty(plan: RestorePlan, *, backup_id: str, target: str) -> str:
    """The refusal of a --target-url that already holds objects, naming them."""
    return (f"the target {target} already holds {len(plan.drops)} object"
            f"{'s' * (len(plan.drops) != 1)} ({named(plan.drops)}): nothing was changed. "
            f"Restore into an empty database, or pass --replace to drop them and restore "
            f"backup {backup_id} exactly")
