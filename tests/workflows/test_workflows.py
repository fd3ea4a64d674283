"""The GitHub Actions workflows: schema-valid, clean under zizmor, and every `inv` call in them
names a real task with options it accepts. GitHub Actions cannot run here, so these checks
are what stands between a typo in a workflow and a failed deploy."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import tasks
from fabfile import ENVIRONMENTS_DIR, PROJECT_ROOT
from fabfile.config import Secret, load_config
from tests.workflows import invcheck

WORKFLOWS_DIR = PROJECT_ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml"))
BIN = Path(sys.executable).parent
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40}$")
OURS = ["ci.yml", "deploy.yml", "deploy-staging.yml", "deploy-production.yml", "monitor.yml",
        "exec.yml", "maintenance.yml"]


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, step) for job_id, job in workflow["jobs"].items()
            for step in job.get("steps") or []]


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict[str, Any]]:
    return {path.name: load(path) for path in WORKFLOWS}


def test_the_workflows_of_issue_6_exist() -> None:
    names = {path.name for path in WORKFLOWS}
    assert set(OURS) <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_matches_the_github_workflow_schema(path: Path) -> None:
    proc = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing_at_medium_or_above() -> None:
    proc = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--no-progress", "--format", "json",
         "--min-severity", "medium", str(WORKFLOWS_DIR)],
        capture_output=True, text=True, check=False,
    )
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=2)[:4000]
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_zizmor_would_catch_an_injection(tmp_path: Path) -> None:
    """The zizmor run above is a real gate: the same call flags a classic injection."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "name: bad\non: pull_request\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo \"${{ github.event.pull_request.title }}\"\n")
    proc = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--no-progress", "--format", "json",
         "--min-severity", "medium", str(bad.parent)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode != 0
    assert "template-injection" in {f["ident"] for f in json.loads(proc.stdout)}


def all_calls(workflows: dict[str, dict[str, Any]]) -> list[invcheck.InvCall]:
    return [call for name, wf in workflows.items() for call in invcheck.find_calls(wf, name)]


def test_every_inv_call_names_a_task_and_options_it_accepts(
        workflows: dict[str, dict[str, Any]]) -> None:
    calls = all_calls(workflows)
    found = [p for call in calls for p in invcheck.problems(call, tasks.ns)]
    assert found == []
    tasks_called = {call.args[0] for call in calls if call.args}
    assert {"deploy", "notify.send", "certs.check", "backup.check", "doctor"} <= tasks_called


def test_the_deploy_call_is_the_one_the_issue_asks_for(
        workflows: dict[str, dict[str, Any]]) -> None:
    deploys = [c for c in invcheck.find_calls(workflows["deploy.yml"], "deploy.yml")
               if c.args[:1] == ("deploy",)]
    assert len(deploys) == 1
    assert deploys[0].args == ("deploy", "--env=0", "--yes", "--version=0")
    assert deploys[0].line == '.venv/bin/inv deploy --env="$DEPLOY_ENV" --yes --version="$VERSION"'
    job = workflows["deploy.yml"]["jobs"]["deploy"]
    assert job["env"]["DEPLOY_ENV"] == "${{ inputs.env }}"
    assert job["env"]["VERSION"] == "${{ inputs.version }}"
    staging = workflows["deploy-staging.yml"]["jobs"]["deploy"]["with"]
    production = workflows["deploy-production.yml"]["jobs"]["deploy"]["with"]
    assert staging == {"environment": "staging", "env": "staging", "version": "${{ github.sha }}"}
    assert production == {"environment": "production", "env": "prod",
                          "version": "${{ inputs.version }}"}


NEGATIVE = """
name: negative
on: push
jobs:
  j:
    runs-on: ubuntu-24.04
    steps:
      - name: typo in a task
        run: .venv/bin/inv deploi --env=prod --yes
      - name: unknown option
        run: |
          echo starting
          inv deploy --env prod --yess --version "${{ github.sha }}" && echo done
      - name: continuation lines and wrappers
        run: |
          sudo -E .venv/bin/inv certs.check \\
            --env=staging \\
            --warn-dayz=${{ inputs.days }}
      - name: missing required option
        run: FOO=1 inv notify.send --env=prod --level=info
      - name: bad value for an integer option
        run: python -m invoke certs.check --env=prod --warn-days 15 --timeout soon
      - name: an expression in the task position
        run: inv ${{ inputs.task }} --env=prod
      - name: fine, both option forms and a shell variable
        run: inv certs.check --env "$E" --warn-days=${{ inputs.days }} --timeout 5; inv --list
      - name: not an inv call
        run: echo inv deploi; pytest -m "not e2e"  # inv nothing
"""


def test_the_checker_catches_wrong_tasks_and_options() -> None:
    calls = invcheck.find_calls(yaml.safe_load(NEGATIVE), "negative.yml")
    assert [c.where.split(" / ")[1] for c in calls] == [
        "typo in a task", "unknown option", "continuation lines and wrappers",
        "missing required option", "bad value for an integer option",
        "an expression in the task position", "fine, both option forms and a shell variable",
        "fine, both option forms and a shell variable",
    ]
    reports = [invcheck.problems(call, tasks.ns) for call in calls]
    assert "No idea what 'deploi' is" in reports[0][0]
    assert "No idea what '--yess' is" in reports[1][0]
    assert "No idea what '--warn-dayz' is" in reports[2][0]
    assert "did not receive required positional arguments: 'message'" in reports[3][0]
    assert "bad option value" in reports[4][0]
    assert "No idea what '0' is" in reports[5][0]
    assert reports[6] == [] and reports[7] == []
    assert calls[2].args == ("certs.check", "--env=staging", "--warn-dayz=0")


def test_actions_are_pinned_to_full_commit_shas(workflows: dict[str, dict[str, Any]]) -> None:
    for name, workflow in workflows.items():
        for job_id, step in steps(workflow):
            uses = step.get("uses")
            if uses and not uses.startswith("./"):
                assert SHA_PIN.match(uses), f"{name}: jobs.{job_id}: {uses} is not SHA-pinned"
        for job_id, job in workflow["jobs"].items():
            uses = job.get("uses")
            assert uses is None or uses.startswith("./.github/workflows/"), (name, job_id)


NAMES = [path.name for path in WORKFLOWS]


@pytest.mark.parametrize("name", NAMES)
def test_least_privilege(workflows: dict[str, dict[str, Any]], name: str) -> None:
    """Permissions are declared at the top (ours: none) and never blanket grants; checkouts
    keep no credentials on disk."""
    workflow = workflows[name]
    assert "permissions" in workflow, f"{name}: no top-level permissions"
    grants = [workflow["permissions"]] + [job.get("permissions")
                                         for job in workflow["jobs"].values()]
    assert not any(g in ("write-all", "read-all") for g in grants), name
    if name in OURS:
        assert workflow["permissions"] == {}
        for job_id, job in workflow["jobs"].items():
            packages = PACKAGES.get((name, job_id))
            wanted = {"contents": "read", **({"packages": packages} if packages else {})}
            assert job.get("permissions") == wanted, f"{name}: {job_id}"
    for job_id, step in steps(workflow):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, f"{name}: {job_id}"


PACKAGES = {
    ("ci.yml", "build"): "write",
    ("deploy-staging.yml", "ci"): "write",
    ("release.yml", "ci"): "write",
    ("deploy-staging.yml", "deploy"): "read",
    ("deploy-production.yml", "deploy"): "read",
    ("deploy.yml", "deploy"): "read",
    ("monitor.yml", "check"): "read",
}
"""Who may touch GHCR: only ci.yml's build job pushes (its callers grant the ceiling), the
deploys and the doctor read."""


def test_the_image_is_built_once_and_promoted(workflows: dict[str, dict[str, Any]]) -> None:
    """CI builds the commit's image after the tests, on main and tags only; staging deploys
    that SHA after it; production only checks the tag is there and never builds."""
    build = workflows["ci.yml"]["jobs"]["build"]
    assert build["needs"] == "test"
    assert "refs/heads/main" in build["if"] and "refs/tags/" in build["if"]
    calls = [c for c in invcheck.find_calls(workflows["ci.yml"], "ci.yml")
             if c.args[:1] == ("build",)]
    assert [c.args for c in calls] == [("build", "--env=staging", "--push", "--cache=gha")]
    run_step = next(s for s in build["steps"] if "inv build" in s.get("run", ""))
    assert run_step["env"] == {"GHCR_TOKEN": "${{ secrets.GITHUB_TOKEN }}"}
    writers = [(n, j) for n, wf in workflows.items() for j, job in wf["jobs"].items()
               if (job.get("permissions") or {}).get("packages") == "write"]
    assert sorted(writers) == sorted(k for k, v in PACKAGES.items() if v == "write")
    assert workflows["deploy-staging.yml"]["jobs"]["deploy"]["needs"] == "ci"
    assert workflows["release.yml"]["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
    deploy_calls = [c.args[0] for c in invcheck.find_calls(workflows["deploy.yml"], "deploy.yml")]
    assert deploy_calls[:2] == ["registry.check", "deploy"]
    for name in ("deploy.yml", "deploy-production.yml", "deploy-staging.yml"):
        assert "inv build" not in json.dumps(workflows[name]), f"{name} must not rebuild"


@pytest.mark.parametrize("name", NAMES)
def test_secrets_only_in_the_env_of_steps_that_need_them(
        workflows: dict[str, dict[str, Any]], name: str) -> None:
    workflow = workflows[name]
    for job_id, job in workflow["jobs"].items():
        outside_steps = {k: v for k, v in job.items() if k != "steps"}
        assert "secrets." not in json.dumps(outside_steps), f"{name}: {job_id}"
        for step in job.get("steps") or []:
            outside_env = {k: v for k, v in step.items() if k != "env"}
            assert "secrets." not in json.dumps(outside_env), f"{name}: {job_id}: {step}"
            assert "${{" not in step.get("run", ""), f"{name}: expression inside run: {step}"


def yaml_secret_names(env: str, *sections: str) -> set[str]:
    """The variables every `{secret: NAME}` of the resolved environment comes from; only
    those under the top-level `sections` when any are given."""
    names: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, Secret):
            names.add(value.name)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                walk(getattr(value, f.name))
        elif isinstance(value, tuple | list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    cfg = load_config(env, root=ENVIRONMENTS_DIR, environ={}, placeholder_secrets=True)
    walk([getattr(cfg, name) for name in sections] if sections else cfg)
    return names


def both_envs(*sections: str) -> set[str]:
    return yaml_secret_names("staging", *sections) | yaml_secret_names("prod", *sections)


def secret_env(step: dict[str, Any]) -> set[str]:
    """The secrets a step receives, each under its own name (GHCR_TOKEN: the run's token)."""
    given = {k for k, v in step.get("env", {}).items() if "secrets." in str(v)}
    for key in given:
        source = "GITHUB_TOKEN" if key == "GHCR_TOKEN" else key
        assert step["env"][key] == f"${{{{ secrets.{source} }}}}", key
    return given


def test_the_deploy_step_gets_every_secret_the_environments_name(
        workflows: dict[str, dict[str, Any]]) -> None:
    """A secret added to staging.yaml or prod.yaml must reach `inv deploy`, and only there."""
    job = workflows["deploy.yml"]["jobs"]["deploy"]
    deploy = next(s for s in job["steps"] if s.get("id") == "deploy")
    given = {k for k, v in deploy["env"].items() if str(v).startswith("${{ secrets.")}
    assert given == yaml_secret_names("staging") | yaml_secret_names("prod")
    for key in given:
        source = "GITHUB_TOKEN" if key == "GHCR_TOKEN" else key
        assert deploy["env"][key] == f"${{{{ secrets.{source} }}}}"
    holders = [s.get("name") for s in job["steps"] if "secrets.SENTRY_DSN" in json.dumps(s)]
    assert holders == ["Deploy"]


@pytest.mark.parametrize(("name", "job_id"), [("deploy.yml", "deploy"), ("monitor.yml", "check")])
def test_the_ssh_files_are_where_the_environments_expect_them(
        workflows: dict[str, dict[str, Any]], name: str, job_id: str) -> None:
    job = workflows[name]["jobs"][job_id]
    script = next(s["run"] for s in job["steps"] if "SSH_PRIVATE_KEY" in s.get("env", {}))
    for env in ("staging", "prod"):
        data = yaml.safe_load((PROJECT_ROOT / "environments" / f"{env}.yaml").read_text())
        for host in data["hosts"]:
            key = host["key_file"].replace("~", "")
            assert f'"$SSH_PRIVATE_KEY" > ~{key}' in script
            assert f'"$SSH_KNOWN_HOSTS" > ~{host["known_hosts"].replace("~", "")}' in script


def test_production_waits_for_approval_and_never_runs_twice(
        workflows: dict[str, dict[str, Any]]) -> None:
    production = workflows["deploy-production.yml"]
    assert set(production["on"]) == {"workflow_dispatch"}
    assert production["on"]["workflow_dispatch"]["inputs"]["version"]["required"] is True
    assert production["concurrency"] == {"group": "deploy-production", "cancel-in-progress": False}
    assert production["jobs"]["deploy"]["uses"] == "./.github/workflows/deploy.yml"
    reusable = workflows["deploy.yml"]
    assert set(reusable["on"]) == {"workflow_call"}
    assert reusable["jobs"]["deploy"]["environment"] == {"name": "${{ inputs.environment }}"}


def test_staging_deploys_main_after_ci(workflows: dict[str, dict[str, Any]]) -> None:
    staging = workflows["deploy-staging.yml"]
    assert staging["on"] == {"push": {"branches": ["main"]}}
    assert staging["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert staging["jobs"]["deploy"]["needs"] == "ci"
    assert staging["jobs"]["deploy"]["concurrency"]["cancel-in-progress"] is False
    ci = workflows["ci.yml"]
    assert {"push", "pull_request", "workflow_call"} <= set(ci["on"])


def test_ci_runs_the_readme_test_commands(workflows: dict[str, dict[str, Any]]) -> None:
    ci = workflows["ci.yml"]
    lint = " ".join(s.get("run", "") for s in ci["jobs"]["lint"]["steps"])
    assert ".venv/bin/ruff check ." in lint and ".venv/bin/mypy" in lint
    matrix = {row["suite"]: row["markers"] for row in
              ci["jobs"]["test"]["strategy"]["matrix"]["include"]}
    assert matrix == {"unit": "not testbed and not e2e", "integration": "testbed and not e2e",
                      "e2e": "e2e"}
    runs = [s.get("run", "") for s in ci["jobs"]["test"]["steps"]]
    assert '.venv/bin/pytest -m "$MARKERS"' in runs
    assert any(r.endswith('.venv/bin/pytest -m "$MARKERS"') and r.startswith("sudo")
               for r in runs)
    assert any("scripts/bootstrap" in r for r in runs)
    cached = [s["with"]["path"] for s in ci["jobs"]["test"]["steps"]
              if str(s.get("uses", "")).startswith("actions/cache@")]
    assert "~/.cache/pip" in cached


# --- monitor.yml: the scheduled checks ---------------------------------------------------------

MONITOR_STEPS = {"certs": ("certs.check", "--env=0"),
                 "backups": ("backup.check", "--env=0"),
                 "doctor": ("doctor", "--env=0", "--skip=certificates,backup-age", "--json")}


def monitor_calls(workflows: dict[str, dict[str, Any]]) -> dict[str, invcheck.InvCall]:
    steps_by_name = {s.get("name"): s.get("id")
                     for s in workflows["monitor.yml"]["jobs"]["check"]["steps"]}
    calls = invcheck.find_calls(workflows["monitor.yml"], "monitor.yml")
    return {steps_by_name[c.where.split(" / ", 1)[1]]: c for c in calls}


def test_the_monitor_runs_daily_and_by_hand(workflows: dict[str, dict[str, Any]]) -> None:
    monitor = workflows["monitor.yml"]
    assert set(monitor["on"]) == {"schedule", "workflow_dispatch"}
    [cron] = [entry["cron"] for entry in monitor["on"]["schedule"]]
    minute, hour, *rest = cron.split()
    assert minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"], cron
    assert monitor["concurrency"]["cancel-in-progress"] is False


def test_the_monitor_checks_staging_and_prod_without_a_reviewer(
        workflows: dict[str, dict[str, Any]]) -> None:
    """Each leg runs in a GitHub environment that holds its secrets; never `production`,
    whose required reviewers would hold a scheduled run until someone approves it."""
    job = workflows["monitor.yml"]["jobs"]["check"]
    assert job["strategy"]["fail-fast"] is False
    legs = {row["env"]: row["environment"] for row in job["strategy"]["matrix"]["include"]}
    assert legs == {"staging": "staging", "prod": "production-backup"}
    assert job["environment"] == {"name": "${{ matrix.environment }}"}
    assert job["env"] == {"CHECK_ENV": "${{ matrix.env }}"}
    assert job["defaults"]["run"]["shell"] == "bash", "pipefail, for the doctor's `| tee`"
    for env in legs:
        load_config(env, root=ENVIRONMENTS_DIR, environ={}, placeholder_secrets=True)


def test_the_monitor_runs_every_check_once(workflows: dict[str, dict[str, Any]]) -> None:
    """certs.check and backup.check run the doctor's `certificates` and `backup-age` checks
    (and alert for them); the doctor runs all the others. None twice: one alert per failure."""
    from fabfile.checks.doctor import CHECK_NAMES
    from fabfile.tasks.doctor import select

    calls = monitor_calls(workflows)
    assert {step: call.args for step, call in calls.items()} == MONITOR_STEPS
    skipped = calls["doctor"].args[2].removeprefix("--skip=")
    by_doctor = set(select("", skipped))
    assert by_doctor.isdisjoint({"certificates", "backup-age"})
    assert by_doctor | {"certificates", "backup-age"} == set(CHECK_NAMES)


def test_a_failing_check_does_not_stop_the_others(workflows: dict[str, dict[str, Any]]) -> None:
    job = workflows["monitor.yml"]["jobs"]["check"]
    by_id = {s.get("id"): s for s in job["steps"]}
    assert by_id["certs"]["if"] == by_id["backups"]["if"] == (
        "${{ !cancelled() && steps.install.outcome == 'success' }}")
    assert by_id["doctor"]["if"] == "${{ !cancelled() && steps.ssh.outcome == 'success' }}"
    ids = [s.get("id") for s in job["steps"]]
    assert ids.index("install") < ids.index("ssh") < ids.index("certs") < ids.index("backups") \
        < ids.index("doctor") < ids.index("doctor-report")
    assert job["steps"][-1]["if"] == "always()" and "rm -f ~/.ssh/roster_deploy" in \
        job["steps"][-1]["run"]


def test_the_doctor_report_is_kept_even_when_the_doctor_fails(
        workflows: dict[str, dict[str, Any]]) -> None:
    job = workflows["monitor.yml"]["jobs"]["check"]
    upload = next(s for s in job["steps"] if s.get("id") == "doctor-report")
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["if"] == "${{ !cancelled() && steps.doctor.outcome != 'skipped' }}"
    assert upload["with"]["name"] == "doctor-${{ matrix.env }}"
    assert upload["with"]["path"] == "${{ runner.temp }}/doctor-${{ matrix.env }}.json"
    doctor = next(s for s in job["steps"] if s.get("id") == "doctor")
    assert '| tee "$RUNNER_TEMP/doctor-$CHECK_ENV.json"' in doctor["run"]


def test_each_monitor_step_gets_only_the_secrets_it_reads(
        workflows: dict[str, dict[str, Any]]) -> None:
    """certs.check needs only the webhook; backup.check the bucket's keys too; the doctor every
    secret the environments name outside `app` (which only the app's own env file uses)."""
    job = workflows["monitor.yml"]["jobs"]["check"]
    given = {s.get("id"): secret_env(s) for s in job["steps"]}
    assert given["certs"] == both_envs("notifications") == {"SLACK_WEBHOOK_URL"}
    assert given["backups"] == both_envs("notifications", "backup")
    sections = [f.name for f in dataclasses.fields(load_config(
        "prod", root=ENVIRONMENTS_DIR, environ={}, placeholder_secrets=True)) if f.name != "app"]
    assert given["doctor"] == both_envs(*sections)
    assert both_envs("app") == {"SENTRY_DSN"}
    assert given["ssh"] == {"SSH_PRIVATE_KEY", "SSH_KNOWN_HOSTS"}
    assert {k for k, v in given.items() if v} == {"ssh", "certs", "backups", "doctor"}


# --- exec.yml and maintenance.yml: the operator's tasks, by hand ----------------------------

BY_HAND = {"exec.yml": "exec", "maintenance.yml": "maintenance"}


@pytest.mark.parametrize(("name", "job_id"), BY_HAND.items())
def test_the_operators_workflows_run_by_hand_with_only_the_ssh_key(
        workflows: dict[str, dict[str, Any]], name: str, job_id: str) -> None:
    """Started by hand for staging or prod (prod behind the `production` environment's
    reviewers); the SSH key is the only secret they need, plus Slack for the page."""
    workflow = workflows[name]
    assert set(workflow["on"]) == {"workflow_dispatch"}
    assert workflow["on"]["workflow_dispatch"]["inputs"]["env"]["options"] == ["staging", "prod"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    job = workflow["jobs"][job_id]
    assert job["environment"] == {
        "name": "${{ inputs.env == 'prod' && 'production' || 'staging' }}"}
    assert job["env"] == {"DEPLOY_ENV": "${{ inputs.env }}"}
    given = {s.get("id"): secret_env(s) for s in job["steps"]}
    assert given["ssh"] == {"SSH_PRIVATE_KEY", "SSH_KNOWN_HOSTS"}
    assert given[job_id] == (both_envs("notifications") if name == "maintenance.yml" else set())
    assert job["steps"][-1]["if"] == "always()"
    assert "rm -f ~/.ssh/roster_deploy" in job["steps"][-1]["run"]


def test_the_operators_workflows_call_exec_and_maintenance(
        workflows: dict[str, dict[str, Any]]) -> None:
    calls = {name: [c.args for c in invcheck.find_calls(workflows[name], name)]
             for name in BY_HAND}
    assert calls["exec.yml"] == [("exec", "--env=0", "--", "0")]
    assert calls["maintenance.yml"] == [("maintenance.off", "--env=0"),
                                        ("maintenance.on", "--env=0", "--message=0"),
                                        ("maintenance.on", "--env=0")]
    inputs = workflows["maintenance.yml"]["on"]["workflow_dispatch"]["inputs"]
    assert inputs["action"]["options"] == ["on", "off"]


def test_the_exec_workflow_splits_the_command_like_a_shell_without_running_it(
        workflows: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """The step's own script, with `inv` replaced by a recorder: quoting kept, nothing in
    the input is run here ($(...), ;), an empty command refused."""
    step = next(s for s in workflows["exec.yml"]["jobs"]["exec"]["steps"]
                if s.get("id") == "exec")
    recorder = tmp_path / "inv"
    recorder.write_text('#!/bin/sh\nfor a in "$@"; do printf "<%s>" "$a"; done\n')
    recorder.chmod(0o755)
    script = step["run"].replace(".venv/bin/inv", str(recorder))

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True,
                              env={"COMMAND": command, "DEPLOY_ENV": "prod",
                                   "PATH": "/usr/bin:/bin"}, check=False)

    proc = run("""python -m app.admin 'two words' "$(touch pwned)"; rm -rf /""")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "<exec><--env=prod><--><python><-m><app.admin><two words><$(touch pwned);><rm><-rf></>")
    assert not Path("pwned").exists()
    empty = run("   ")
    assert empty.returncode == 1 and "the command is empty" in empty.stdout
