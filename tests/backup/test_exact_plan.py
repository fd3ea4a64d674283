"""The plan of an exact restore as `client.sh` prints it, and the refusals it turns into: pure."""

from __future__ import annotations

from fabfile.backup import exact

OUT = "\n".join([
    "phase plan cache",
    "plan\tdrop\tschema\treporting",
    "plan\tdrop\ttable\tpublic.teams",
    "plan\tdrop\tfunction\tpublic.team_count()",
    "plan\tforeign\ttable\tpublic.intruder\tadmin",
    "plan\tneed\tcreate-schema\taudit\t",
    "plan\tneed\tcreate-in\tpublic\t",
    "plan\tneed\textension\tcitext\tprivilege",
    "plan\tneed\textension\tpostgis\tunavailable",
    "plan\tbroken",
    "done",
])


def test_parse() -> None:
    plan = exact.parse(OUT)
    assert plan.drops == (("schema", "reporting"), ("table", "public.teams"),
                          ("function", "public.team_count()"))
    assert plan.foreign == (("table", "public.intruder", "admin"),)
    assert [n[:2] for n in plan.needs] == [("create-schema", "audit"), ("create-in", "public"),
                                           ("extension", "citext"), ("extension", "postgis")]
    assert plan.refused
    assert not exact.parse("plan\tdrop\ttable\tpublic.a\n").refused


def test_the_refusal_gives_each_fix() -> None:
    text = exact.refusal(exact.parse(OUT), user="App User", db="roster", backup_id="B",
                         target="db:5432/roster")
    lines = text.split("\n  ")
    assert lines[0].startswith("an exact restore of backup B into db:5432/roster needs what "
                               "the database user App User may not do, so nothing was changed")
    assert lines[1:] == [
        "table public.intruder belongs to role admin, so App User cannot drop it: have admin "
        '(or a superuser) run `ALTER TABLE public.intruder OWNER TO "App User";`, or drop it',
        'the backup creates schema audit: `GRANT CREATE ON DATABASE roster TO "App User";`',
        "the backup puts objects in schema public: `GRANT USAGE, CREATE ON SCHEMA public TO "
        '"App User";`',
        "the backup holds extension citext, which App User may not create: have a superuser "
        "run `CREATE EXTENSION citext;` in roster",
        "the backup holds extension postgis, which this server does not offer: install it "
        "there (PostgreSQL's contrib package or the extension's own), or restore into another "
        "server",
    ]


def test_a_busy_target_is_named() -> None:
    plan = exact.RestorePlan(drops=tuple(("table", f"public.t{i}") for i in range(10)))
    text = exact.not_empty(plan, backup_id="B", target="h:5432/other")
    assert text.startswith("the target h:5432/other already holds 10 objects (table public.t0, ")
    assert "table public.t7 and 2 more): nothing was changed" in text
    assert "pass --replace to drop them and restore backup B exactly" in text
