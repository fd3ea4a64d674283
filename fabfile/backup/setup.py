"""`backup.setup`: the bucket's lifecycle rule (merged into the rules already there), the
encryption settings proven with a real write, the host's cache directory (mode 0700)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fabfile.config import Config
from fabfile.errors import UserError
from fabfile.remote import connect

from . import plan
from .env import BackupEnv
from .s3 import lifecycle_rule, merge_rules


@dataclass
class SetupReport:
    lines: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, what: str, result: str) -> None:
        self.lines.append((what, result))


def setup(cfg: Config) -> SetupReport:
    env = BackupEnv(cfg)
    store, settings = env.store, env.settings
    report = SetupReport()
    store.check_access()
    report.add("bucket", f"{store.where} reachable with the configured credentials")

    keep_counts = settings.keep_daily or settings.keep_weekly or settings.keep_monthly
    ours = lifecycle_rule(store.prefix, settings.retention_days, expire=not keep_counts)
    existing = store.lifecycle_rules()
    merged, warnings = merge_rules(existing, ours)
    store.put_lifecycle_rules(merged)
    report.warnings.extend(warnings)
    expiry = (f"expire after {settings.retention_days} days" if not keep_counts else
              "no expiry (keep-counts are set: inv backup.prune applies retention)")
    report.add("lifecycle", f"rule {ours['ID']}: abort unfinished uploads after 1 day, "
                            f"{expiry}; {len(merged) - 1} other rule(s) kept")

    report.add("encryption", _check_encryption(env))

    remote = connect(env.host)
    try:
        facts = plan.parse_facts(remote.run(plan.facts_step(
            env.cache_dir, env.client, env.target, create_cache=True)).stdout)
    finally:
        remote.close()
    plan.check_facts(facts, env.client, host=env.host.label, db=env.target.label,
                     need_db=False)
    if not facts.cache.startswith("700"):
        raise UserError(f"{env.cache_dir} on {env.host.label} has mode {facts.cache}, "
                        "not 700: fix its owner or pick another backup.cache_dir")
    free = f", {facts.free_kb / 1e6:.1f} GB free" if facts.free_kb is not None else ""
    report.add("host cache", f"{env.cache_dir} on {env.host.label}: mode {facts.cache}{free}")
    if facts.db_error:
        report.warnings.append(f"the database is not reachable from the host yet: "
                               f"{facts.db_error}")
    elif facts.server_major and facts.client_major:
        report.add("client", f"pg_dump {facts.client_version_text} for PostgreSQL "
                             f"{facts.server_major} ({env.client.describe(facts.server_major)})")
        if facts.client_major < facts.server_major:
            plan.check_facts(facts, env.client, host=env.host.label, db=env.target.label)
    return report


def _check_encryption(env: BackupEnv) -> str:
    """Write and delete a small object with the configured SSE headers: providers differ
    (DigitalOcean Spaces rejects AES256 headers, MinIO needs a KMS for them)."""
    store, settings = env.store, env.settings
    probe = f"{store.prefix}/.setup-encryption-check" if store.prefix else ".setup-check"
    try:
        store.put(probe, b"shipyard backup setup check\n", "text/plain")
    except UserError as exc:
        hint = ("" if settings.sse == "none" else
                f": the provider may not support sse {settings.sse} (DigitalOcean Spaces "
                "rejects it; MinIO needs a KMS): set backup.sse: none and rely on the "
                "bucket's own encryption")
        raise UserError(f"{exc.message}{hint}") from None
    store.delete_quietly(probe)
    default = store.default_encryption()
    if settings.sse == "none":
        return ("objects are written without SSE headers; the bucket's default encryption: "
                f"{default or 'none reported'}")
    return f"objects are written with SSE {settings.sse}; bucket default: {default or 'none'}"
