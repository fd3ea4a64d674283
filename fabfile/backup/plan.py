"""What runs on the host, as data: the steps that carry the scripts of `scripts/`, and the
parsers of what they print. Pure: no I/O, tested as data.

Two kinds of script cooperate. `client.sh` runs where the PostgreSQL client tools are: inside
a `postgres:<server major>` container (`backup.client: docker`) or on the host itself
(`client: host`). The other scripts run on the host, start `client.sh` through `client`
(`lib.sh`), and do the rest with the host's own tools (zstd, sha256sum, curl): compress,
hash, upload to presigned URLs, download, check. Each script's header says what it does,
its arguments, what it prints and its exit codes.

Secrets never appear in argv: the database password and the presigned URLs arrive on stdin.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from fabfile.config import Config
from fabfile.deploy.scripts import LOCK_LIBRARY
from fabfile.errors import UserError
from fabfile.remote import Step
from fabfile.shell import Scripts

MIB = 1024 * 1024
CONNECT_TIMEOUT = 10

SCRIPTS = Scripts("fabfile.backup", {
    "client": (),
    "part": (),
    "facts": ("lib",),
    "create": ("lib",),
    "restore": ("lib", LOCK_LIBRARY),
    "cache_list": (),
    "cache_prune": ("lib",),
})
"""`scripts/*.sh`: `client.sh` runs where the PostgreSQL client tools are (the host scripts
get its text as an argument, as `create.sh` gets `part.sh`'s, which it runs once a part);
the rest run on the host with `lib.sh`'s functions."""


def quote_conninfo(value: str) -> str:
    """A libpq conninfo value in single quotes (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class DbTarget:
    """A database as the client reaches it from the host: conninfo without the password."""

    params: tuple[tuple[str, str], ...]
    password: str = field(repr=False)
    network: str = "host"

    @property
    def conninfo(self) -> str:
        return " ".join(f"{k}={quote_conninfo(v)}" for k, v in self.params)

    def get(self, name: str, default: str = "") -> str:
        return dict(self.params).get(name, default)

    @property
    def dbname(self) -> str:
        return self.get("dbname")

    @property
    def label(self) -> str:
        return f"{self.get('host')}:{self.get('port', '5432')}/{self.dbname}"

    def with_db(self, dbname: str) -> DbTarget:
        params = tuple((k, dbname if k == "dbname" else v) for k, v in self.params)
        return replace(self, params=params)


def target_from_url(url: str, network: str = "host") -> DbTarget:
    """A DbTarget from a libpq URL (postgresql://user:pw@host:port/db?sslmode=...)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname:
        raise UserError("a database URL must look like "
                        "postgresql://user:password@host:5432/dbname")
    try:
        port = parts.port or 5432
    except ValueError:
        raise UserError("the port in the database URL is not a number") from None
    params = [("host", parts.hostname), ("port", str(port)),
              ("dbname", unquote(parts.path.lstrip("/")) or unquote(parts.username or ""))]
    if parts.username:
        params.append(("user", unquote(parts.username)))
    query = dict(parse_qsl(parts.query))
    query.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
    params.extend(sorted(query.items()))
    return DbTarget(tuple(params), unquote(parts.password or ""), network)


def env_target(cfg: Config) -> DbTarget:
    """The environment's own database: the managed URL, or the stack's `db` service."""
    db = cfg.database
    if db.backend == "sqlite":
        raise UserError(f"environment {cfg.env} still runs on SQLite (database.backend: "
                        "sqlite): backups cover PostgreSQL, after inv db.cutover")
    if db.url is not None:
        return target_from_url(db.url.reveal())
    if db.local is not None:
        password = db.local.password.reveal() if db.local.password else ""
        return DbTarget((("host", "db"), ("port", "5432"), ("dbname", db.local.database),
                         ("user", db.local.user),
                         ("connect_timeout", str(CONNECT_TIMEOUT))),
                        password, network=f"{cfg.project}_backend")
    raise UserError(f"environment {cfg.env} has no database (database.url or database.local)")


@dataclass(frozen=True)
class Client:
    """How the host runs pg_dump/pg_restore: in a container of `image`, or its own tools."""

    kind: Literal["docker", "host"]
    image: str = "postgres:{major}"
    bin_dir: str = ""

    @classmethod
    def from_config(cls, cfg: Config) -> Client:
        assert cfg.backup is not None
        return cls(cfg.backup.client, cfg.backup.client_image, cfg.backup.client_bin_dir or "")

    @property
    def pinned(self) -> bool:
        return "{major}" not in self.image

    def image_for(self, major: int) -> str:
        return self.image.replace("{major}", str(major))

    def where(self, major: int) -> str:
        """The `where` argument of the host scripts: the image, or the host's bin dir."""
        return self.image_for(major) if self.kind == "docker" else self.bin_dir

    def describe(self, major: int) -> str:
        if self.kind == "docker":
            return f"docker {self.image_for(major)}"
        return f"host {self.bin_dir or '(PATH)'}"

    def check_network(self, target: DbTarget) -> None:
        if self.kind == "host" and target.network != "host":
            raise UserError(
                "backup.client: host cannot reach the stack's own `db` service (it sits on an "
                "internal Docker network): use backup.client: docker")


def facts_step(cache_dir: str, client: Client, target: DbTarget, *, create_cache: bool) -> Step:
    if client.kind == "docker":
        head, _, tail = client.image.partition("{major}")
        where, suffix = head, tail
    else:
        where, suffix = client.bin_dir, ""
    return SCRIPTS.step("gather backup facts", "facts", SCRIPTS.body("client"), cache_dir,
                        client.kind, where, suffix, target.network, target.conninfo,
                        "1" if client.pinned else "0", "1" if create_cache else "0",
                        stdin=f"{target.password}\n".encode(), timeout=300)


@dataclass(frozen=True)
class Upload:
    """Where and how the host uploads: a single-PUT URL with its signed headers, part URLs."""

    put_url: str
    put_headers: tuple[str, ...]
    part_urls: tuple[str, ...]
    threshold: int
    part_size: int
    concurrency: int


def create_step(cache_dir: str, backup_id: str, client: Client, major: int, target: DbTarget,
                upload: Upload, keep_local: int, *, protect: str = "") -> Step:
    """The backup's one round trip; the cache keeps `protect`'s dump (a restore needs it)."""
    if upload.part_size % MIB or upload.part_size < 5 * MIB:
        raise ValueError("part size must be a multiple of 1 MiB and at least 5 MiB")
    stdin = "\n".join([target.password, upload.put_url, *upload.part_urls]) + "\n"
    return SCRIPTS.step("dump, compress and upload", "create", SCRIPTS.body("client"),
                        SCRIPTS.body("part"), cache_dir, backup_id, client.kind,
                        client.where(major), target.network, target.conninfo,
                        str(upload.threshold), str(upload.part_size), str(upload.concurrency),
                        str(keep_local), "\n".join(upload.put_headers), protect,
                        stdin=stdin.encode())


@dataclass(frozen=True)
class HostLock:
    """The host lock a restore over the live database runs under: taken by the task (with
    the deploy's facts command) before the restore step, released after it."""

    path: str
    token: str


RestoreMode = Literal["exact", "empty"]
"""`exact`: drop whatever the backup does not hold, then restore; `empty`: only into a
database that holds nothing to drop (else exit 63, naming it)."""


def restore_step(cache_dir: str, backup_id: str, client: Client, major: int, target: DbTarget,
                 sha256: str, get_url: str, *, jobs: int, mode: RestoreMode,
                 check: bool = False, scratch: str = "", admin: DbTarget | None = None,
                 lock: HostLock | None = None) -> Step:
    """The restore's round trip; with `check`, only the preflight: the dump reaches the
    cache and checks out, and the plan of the restore is printed; nothing changes."""
    stdin = f"{target.password}\n{get_url}\n".encode()
    return SCRIPTS.step("check the dump and plan the restore" if check else "check and restore",
                        "restore", SCRIPTS.body("client"), cache_dir, backup_id, client.kind,
                        client.where(major), target.network, target.conninfo, sha256,
                        str(jobs), "check" if check else "restore", mode, scratch,
                        (admin or target).conninfo, lock.path if lock else "",
                        lock.token if lock else "", stdin=stdin)


def cache_list_step(cache_dir: str) -> Step:
    return SCRIPTS.step("list the host's backup cache", "cache_list", cache_dir, timeout=60)


def cache_prune_step(cache_dir: str, keep: int, *, dry_run: bool) -> Step:
    return SCRIPTS.step("prune the host's backup cache", "cache_prune", cache_dir, str(keep),
                        "1" if dry_run else "0", timeout=120)


@dataclass(frozen=True)
class HostFacts:
    """What the facts script found on the host (and, through the client, the database)."""

    tools: dict[str, bool]
    free_kb: int | None
    cache: str
    cpus: int
    image: str
    client_version: str
    server_version_num: int | None
    db_size: int | None
    db_error: str
    docker_error: str
    cache_error: str

    @property
    def missing_tools(self) -> list[str]:
        return [name for name, ok in self.tools.items() if not ok]

    @property
    def client_major(self) -> int | None:
        version = self.client_version_text
        return int(version.split(".")[0]) if version and version[0].isdigit() else None

    @property
    def client_version_text(self) -> str:
        """'15.18' from 'pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)'."""
        words = self.client_version.split()
        for word in words:
            if word[:1].isdigit():
                return word
        return ""

    @property
    def server_major(self) -> int | None:
        return self.server_version_num // 10000 if self.server_version_num else None


def parse_facts(stdout: str) -> HostFacts:
    tools: dict[str, bool] = {}
    values: dict[str, str] = {}
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "tool":
            name, _, answer = rest.partition(" ")
            tools[name] = answer == "yes"
        elif word in ("free", "cache", "cpus", "image", "client", "server", "dberror",
                      "dockererror", "cacheerror"):
            values[word] = rest.strip()
    server = values.get("server", "").split()
    return HostFacts(
        tools=tools,
        free_kb=int(values["free"]) if values.get("free", "").isdigit() else None,
        cache=values.get("cache", "missing"),
        cpus=int(values["cpus"]) if values.get("cpus", "").isdigit() else 1,
        image=values.get("image", ""),
        client_version=values.get("client", ""),
        server_version_num=int(server[0]) if server and server[0].isdigit() else None,
        db_size=int(server[1]) if len(server) > 1 and server[1].isdigit() else None,
        db_error=values.get("dberror", ""),
        docker_error=values.get("dockererror", ""),
        cache_error=values.get("cacheerror", ""),
    )


def parse_counts(stdout: str) -> dict[str, int]:
    """`count<TAB>table<TAB>n` lines into {table: n}."""
    counts: dict[str, int] = {}
    for line in stdout.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[0] == "count" and fields[2].isdigit():
            counts[fields[1]] = int(fields[2])
    return counts


def parse_etags(stdout: str) -> list[tuple[int, str]]:
    """`etag N VALUE` lines, in part order."""
    tags = []
    for line in stdout.splitlines():
        fields = line.split(" ", 2)
        if len(fields) == 3 and fields[0] == "etag" and fields[1].isdigit():
            tags.append((int(fields[1]), fields[2].strip()))
    return sorted(tags)


def parse_cache_list(stdout: str) -> dict[str, int]:
    """{backup id: size} of the dumps in the host's cache."""
    found: dict[str, int] = {}
    for line in stdout.splitlines():
        name, _, size = line.rpartition(" ")
        if name.endswith(".dump.zst") and size.isdigit():
            found[name.removesuffix(".dump.zst")] = int(size)
    return found


def part_plan(estimate: int, part_size: int, max_parts: int = 10_000) -> int:
    """How many part URLs to presign for a dump expected to be at most `estimate` bytes.

    The host widens its parts when the dump outgrows them, so this only has to be generous:
    twice the estimate (the database's size: the compressed dump is far smaller), at least 8.
    """
    wanted = -(-2 * max(estimate, 1) // part_size)
    return max(8, min(max_parts, wanted))


_CONNECT_ERRORS = ("could not connect", "connection to server", "connection refused",
                   "timeout expired", "could not translate host name", "no route to host",
                   "password authentication failed", "does not exist",
                   "no pg_hba.conf entry", "could not open a session")


def tail(text: str, lines: int = 3, limit: int = 500) -> str:
    """The last few non-empty lines of `text`, joined, for one-line messages."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    joined = " | ".join(kept)
    return joined if len(joined) <= limit else "..." + joined[-limit:]


def explain_failure(code: int, stderr: str, *, host: str, cache_dir: str, db: str) -> str:
    """One operator-facing sentence for a failed CREATE or RESTORE script (by exit code)."""
    detail = tail(stderr)
    if code in (21, 30):
        if any(marker in stderr.lower() for marker in _CONNECT_ERRORS):
            return (f"cannot connect to the database {db} from {host}: {detail}. Check "
                    f"database.url and that {host} may reach the database")
        return f"pg_dump failed on {host}: {detail}"
    if code == 31:
        return (f"the disk holding {cache_dir} on {host} is full ({detail}): free space there "
                f"(df -h {cache_dir}) or point backup.cache_dir at a larger disk. Nothing was "
                "recorded as a backup")
    if code == 12:
        return f"{detail}; wait a second and run it again"
    if code == 11:
        return f"{detail.split(' | ')[-1]}: install it on {host} (apt-get install zstd curl)"
    if code == 32:
        return f"compressing the dump failed on {host}: {detail}"
    if code == 40:
        return (f"the upload from {host} to S3 failed: {detail}. The partial upload was "
                "aborted and no backup was recorded")
    if code == 50:
        return f"downloading the dump from S3 to {host} failed: {detail}"
    if code in (60, 61, 64):
        if any(marker in stderr.lower() for marker in _CONNECT_ERRORS[:6]):
            return f"cannot connect to the target database {db} from {host}: {detail}"
        what = {60: "pg_restore", 61: "dropping what the backup does not hold",
                64: "reading the database and the dump's contents"}[code]
        return f"{what} failed on {host}: {detail}"
    if code == 14:
        return (f"the host lock on {host} is no longer this run's (did someone run `inv "
                "lock.release`?): stopped before touching the database")
    if code == 124:
        return f"the step on {host} timed out or the SSH connection dropped: {detail}"
    return f"the backup script failed on {host} (exit {code}): {detail or 'no output'}"


def check_facts(facts: HostFacts, client: Client, *, host: str, db: str,
                need_db: bool = True) -> None:
    """Refuse, with the fix, what would make a dump fail or be unrestorable."""
    if facts.cache_error:
        raise UserError(f"on {host}: {facts.cache_error}")
    missing = facts.missing_tools
    if "docker" in missing:
        raise UserError(f"{host} has no docker, which backup.client: docker needs: install "
                        "Docker, or set backup.client: host and install postgresql-client")
    if missing:
        raise UserError(f"{host} lacks {', '.join(missing)}, which backups need: install them "
                        f"(apt-get install {' '.join(missing).replace('sha256sum', 'coreutils')})")
    if facts.docker_error:
        raise UserError(f"the client container {facts.image or client.image} did not run on "
                        f"{host}: {facts.docker_error}. Check that the image exists there or "
                        "can be pulled (backup.client_image)")
    if not need_db:
        return
    if facts.db_error:
        raise UserError(f"cannot connect to the database {db} from {host}: {facts.db_error}. "
                        f"Check database.url and that {host} may reach the database")
    server, client_major = facts.server_major, facts.client_major
    if server is None or client_major is None:
        raise UserError(f"could not tell the versions of the server ({server}) and of pg_dump "
                        f"({facts.client_version or 'missing'}) on {host}")
    if client_major < server:
        version = facts.client_version_text
        if client.kind == "docker":
            fix = (f"set backup.client_image to a PostgreSQL {server} image (the default "
                   "postgres:{major} always matches the server)")
        else:
            fix = (f"install postgresql-client-{server} on {host} and set backup.client_bin_dir: "
                   f"/usr/lib/postgresql/{server}/bin, or use backup.client: docker")
        raise UserError(f"pg_dump {version} on {host} is older than the database server "
                        f"(PostgreSQL {server}), and pg_dump refuses newer servers: {fix}")


def parse_versions(stdout: str) -> tuple[int | None, str]:
    """(server_version_num, 'X.Y' of pg_dump) from the `server`/`client` lines of a dump."""
    num: int | None = None
    client = ""
    for line in stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "server" and rest.strip().isdigit():
            num = int(rest.strip())
        elif word == "client":
            client = next((w for w in rest.split() if w[:1].isdigit()), "")
    return num, client
