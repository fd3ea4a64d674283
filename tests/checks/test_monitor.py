"""The scheduled checks of `.github/workflows/monitor.yml`, run here as the runner runs them:
each check step's script taken from the YAML (never retyped), under the job's shell, with
its `env:` resolved for the `staging` leg of the matrix, through the real `inv`.

The environment `staging` is the test bed: its one host is the sshd on 127.0.0.1 (Docker
Engine, Compose v2), its domain resolves there, a stand-in Traefik on 127.0.0.1:443 serves a
certificate made here (valid 90 days, or 10), its database is the TLS PostgreSQL, its
bucket is moto's, holding a backup made by `inv backup.create` (or one aged to 30 hours),
and its Slack webhook is a local server that records what is posted.

A healthy set-up exits 0 and posts nothing; each failing case fails its step only, and the
webhook receives exactly one message, naming the failing check.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from fabfile import PROJECT_ROOT
from fabfile.backup import naming
from fabfile.backup.manifest import Manifest
from fabfile.checks.doctor import CHECK_NAMES
from tests.checks import hostbed
from tests.checks.tls import Pem, make_ca, make_leaf
from tests.checks.webhook import Webhook, webhook
from tests.helpers import DUMMY_SECRETS, env_tree, run_inv
from tests.support.docker import docker
from tests.support.images import ImageSet
from tests.support.postgres import PgCluster
from tests.support.registry import Registry
from tests.support.s3 import S3Server
from tests.support.sshd import SshHost, write_wrong_known_hosts
from tests.workflows import runner

pytestmark = pytest.mark.testbed

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "monitor.yml"
JOB = "check"
CHECK_STEPS = ("certs", "backups", "doctor")
DOMAIN = "app.monitor.test"
PREFIX = "staging"


@dataclass(frozen=True)
class Bed:
    host: SshHost
    ca: Path
    good: Pem
    soon: Pem
    db_url: str
    s3: S3Server
    fresh_bucket: str
    stale_bucket: str
    work: Path
    registry: Registry


@dataclass
class Run:
    """What one run of the scheduled checks did: each step's process, the webhook's inbox."""

    steps: dict[str, subprocess.CompletedProcess[str]]
    hook: Webhook
    report: Path

    def codes(self) -> dict[str, int]:
        return {name: proc.returncode for name, proc in self.steps.items()}

    def log(self) -> str:
        return "\n".join(f"--- {name} ({proc.returncode})\n{proc.stdout}{proc.stderr}"
                         for name, proc in self.steps.items())


def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def staging_leg(data: dict[str, Any]) -> dict[str, str]:
    legs = [row for row in data["jobs"][JOB]["strategy"]["matrix"]["include"]
            if row["env"] == "staging"]
    assert len(legs) == 1
    return legs[0]


def environments(tmp_path: Path, bed: Bed, *, bucket: str,
                 known_hosts: Path | None = None) -> Path:
    """The shipped environments with `staging` pointed at the test bed."""
    return env_tree(tmp_path, {"staging": {
        "domains": [DOMAIN],
        "hosts": [{"address": bed.host.address, "port": bed.host.port, "user": bed.host.user,
                   "key_file": str(bed.host.key_file),
                   "known_hosts": str(known_hosts or bed.host.known_hosts),
                   "connect_timeout": 5}],
        "deploy": {"app_dir": str(tmp_path / "srv" / "app")},
        "backup": {"bucket": bucket, "prefix": PREFIX, "endpoint_url": bed.s3.endpoint_url,
                   "region": bed.s3.region, "cache_dir": str(bed.work / "cache")},
        "checks": {"db_client_image": "postgres:15", "ca_file": str(bed.ca),
                   "min_free_disk_gb": 0.5},
        "app": {"image": f"{bed.registry.server}/monitor"},
        "registry": {"server": bed.registry.server, "username": bed.registry.username,
                     "password": {"secret": "GHCR_TOKEN"}, "ca_file": str(bed.registry.ca_file)},
    }})


def secrets(bed: Bed, hook_url: str) -> dict[str, str]:
    """The `staging` GitHub environment's secrets, as far as the test bed has them."""
    return {"SLACK_WEBHOOK_URL": hook_url, "STAGING_DATABASE_URL": bed.db_url,
            "STAGING_BACKUP_ACCESS_KEY_ID": bed.s3.access_key,
            "STAGING_BACKUP_SECRET_ACCESS_KEY": bed.s3.secret_key,
            "GITHUB_TOKEN": bed.registry.password}


def age_backup(s3: S3Server, source: str, target: str, hours: float) -> str:
    """Copy the one backup in `source` into `target` as if it had been taken `hours` ago:
    id, keys and manifest times shifted, the objects' Last-Modified set back on the server.

    moto runs in this process (the `s3_server` fixture), so its stored objects can be
    dated; the listing through the S3 API is checked to show the new date."""
    from moto.s3.models import s3_backends

    client = s3.client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=source)["Contents"])
    manifest_key = next(k for k in keys if k.endswith(naming.SUFFIXES["manifest"]))
    manifest = Manifest.from_json(client.get_object(Bucket=source, Key=manifest_key)["Body"]
                                  .read(), manifest_key)
    shift = timedelta(hours=hours)
    started = naming.id_time(manifest.backup_id) - shift
    backup_id = naming.new_id(started)
    dump_key = naming.key(PREFIX, backup_id, "dump")
    aged = dataclasses.replace(
        manifest, backup_id=backup_id, dump_key=dump_key,
        started_at=(datetime.fromisoformat(manifest.started_at) - shift).isoformat(),
        finished_at=(datetime.fromisoformat(manifest.finished_at) - shift).isoformat())
    client.copy_object(Bucket=target, Key=dump_key,
                       CopySource={"Bucket": source, "Key": manifest.dump_key})
    client.put_object(Bucket=target, Key=naming.key(PREFIX, backup_id, "manifest"),
                      Body=aged.to_json())
    stored = [bucket for regions in s3_backends.values() for backend in regions.values()
              for name, bucket in backend.buckets.items() if name == target]
    assert len(stored) == 1, "the s3_server fixture must run moto in this process"
    for _key, versions in stored[0].keys.lists():
        for obj in versions:
            obj.last_modified = obj.last_modified - shift
    listed = client.list_objects_v2(Bucket=target)["Contents"]
    assert len(listed) == 2
    assert all(datetime.now(UTC) - o["LastModified"] > shift - timedelta(minutes=5)
               for o in listed), listed
    return backup_id


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory, ssh_host: SshHost, tls_pg: PgCluster,
        s3_server: S3Server, test_images: ImageSet, registry: Registry) -> Bed:
    work = tmp_path_factory.mktemp("monitor")
    ca = make_ca(work / "pki")
    fresh, stale = (f"monitor-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("fresh", "stale"))
    for name in (fresh, stale):
        s3_server.client().create_bucket(Bucket=name)
    made = Bed(host=ssh_host, ca=ca.pem,
               good=make_leaf(work / "pki", ca, [DOMAIN], days=90, stem="good"),
               soon=make_leaf(work / "pki", ca, [DOMAIN], days=10, stem="soon"),
               db_url=f"postgresql://postgres@127.0.0.1:{tls_pg.port}/postgres?sslmode=require",
               s3=s3_server, fresh_bucket=fresh, stale_bucket=stale, work=work,
               registry=registry)
    # The image the environment names, on the host (the healthcheck check runs in it).
    docker("tag", test_images.roster_v2, f"{registry.server}/monitor:latest")
    root = environments(work / "create", made, bucket=fresh)
    created = run_inv("backup.create", "--env=staging", env_dir=root,
                      extra_env=secrets(made, ""), timeout=300)
    assert created.returncode == 0, created.stdout + created.stderr
    age_backup(s3_server, fresh, stale, hours=30)
    return made


@pytest.fixture
def web_ports() -> Iterator[None]:
    with hostbed.web_ports():
        yield


def run_checks(tmp_path: Path, bed: Bed, *, pem: Pem, bucket: str,
               known_hosts: Path | None = None) -> Run:
    """Every check step of the workflow's `staging` leg, in order, each one whatever the
    previous ones did (as their `if: !cancelled() && ...` has it)."""
    data = workflow()
    root = environments(tmp_path, bed, bucket=bucket, known_hosts=known_hosts)
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    clean = {k: v for k, v in hostbed.base_env().items() if k not in DUMMY_SECRETS}
    steps: dict[str, subprocess.CompletedProcess[str]] = {}
    with hostbed.fake_traefik(pem), webhook() as hook:
        context = runner.Context(matrix=staging_leg(data), secrets=secrets(bed, hook.url),
                                 runner_temp=str(temp))
        for step_id in CHECK_STEPS:
            command = runner.command(data, JOB, step_id, context)
            env = {**clean, "RUNNER_TEMP": str(temp), "DEPLOY_ENVIRONMENTS_DIR": str(root),
                   **command.env}
            steps[step_id] = hostbed.run_with_hosts(tmp_path, f"127.0.0.1 {DOMAIN}",
                                                    command.argv, env, cwd=PROJECT_ROOT)
        artifact = runner.step(data, JOB, "doctor-report")["with"]["path"]
        return Run(steps, hook, Path(context.resolve(artifact)))


def the_one_alert(run: Run, step: str, check: str, command: str) -> str:
    """`step` alone failed, and the webhook got one message: its alert, naming `check`."""
    assert run.codes() == {name: int(name == step) for name in CHECK_STEPS}, run.log()
    assert len(run.hook.payloads) == 1, [p["text"] for p in run.hook.payloads]
    text = run.hook.payloads[0]["text"]
    assert isinstance(text, str)
    assert text.startswith(f":warning: [roster/staging] Check failed: {check} (`{command}`)\n")
    return text


def test_a_healthy_set_up_passes_and_posts_nothing(tmp_path: Path, bed: Bed,
                                                   web_ports: None) -> None:
    run = run_checks(tmp_path, bed, pem=bed.good, bucket=bed.fresh_bucket)
    assert run.codes() == {"certs": 0, "backups": 0, "doctor": 0}, run.log()
    assert run.hook.requests == []
    assert f"{DOMAIN} via 127.0.0.1" in run.steps["certs"].stdout
    assert "1 certificate(s) valid for at least 15 more days" in run.steps["certs"].stdout
    assert "the newest complete backup is 0.0 hours old" in run.steps["backups"].stdout
    report = json.loads(run.report.read_text())
    assert report == json.loads(run.steps["doctor"].stdout)
    assert [r["check"] for r in report] == [
        c for c in CHECK_NAMES if c not in ("certificates", "backup-age")]
    assert {r["check"]: r["status"] for r in report if r["status"] != "ok"} == {
        "swarm": "skip"}, report


def test_a_certificate_with_10_days_left_fails_and_alerts_once(
        tmp_path: Path, bed: Bed, web_ports: None) -> None:
    run = run_checks(tmp_path, bed, pem=bed.soon, bucket=bed.fresh_bucket)
    text = the_one_alert(run, "certs", "certificates", "inv certs.check --env=staging")
    assert f"• {DOMAIN} via 127.0.0.1: expires in 9 days, on " in text
    assert "(threshold 15 days)" in text
    assert "fix: Traefik renews Let's Encrypt certificates 30 days before expiry" in text
    assert "error: 1 of 1 certificate(s) failed the check" in run.steps["certs"].stderr


def test_a_backup_30_hours_old_fails_and_alerts_once(tmp_path: Path, bed: Bed,
                                                     web_ports: None) -> None:
    run = run_checks(tmp_path, bed, pem=bed.good, bucket=bed.stale_bucket)
    text = the_one_alert(run, "backups", "backup-age", "inv backup.check --env=staging")
    assert "• backup-age on roster/staging: the newest complete backup is 30.0 hours old " \
           "(limit 26)" in text
    assert "fix: check the scheduled backup workflow's recent runs, then run " \
           "inv backup.create --env=staging" in text
    assert "error: 1 check(s) failed: backup-age" in run.steps["backups"].stderr


def test_a_host_whose_key_changed_fails_the_doctor_and_alerts_once(
        tmp_path: Path, bed: Bed, web_ports: None) -> None:
    known_hosts = write_wrong_known_hosts(bed.host, tmp_path / "known_hosts")
    run = run_checks(tmp_path, bed, pem=bed.good, bucket=bed.fresh_bucket,
                     known_hosts=known_hosts)
    text = the_one_alert(run, "doctor", "ssh", "inv doctor --env=staging")
    assert f"• ssh on root@127.0.0.1:{bed.host.port}: " in text
    assert "fix: verify the host's key out of band" in text
    report = json.loads(run.report.read_text())
    assert [(r["check"], r["status"]) for r in report][:2] == [("ssh", "fail"),
                                                              ("docker", "skip")]
    assert "error: 1 check(s) failed: ssh" in run.steps["doctor"].stderr
