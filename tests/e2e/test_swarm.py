"""`deploy.engine: swarm` end to end: the real CLI over real SSH against a real two-node
Docker Swarm (`tests/support/swarm.py`), behind the stand-in for Traefik's Swarm provider
(`tests/support/swarm_front.py`: polls every 2 s, routes to running tasks, throttle 1 s), at
25 requests/s. Rolling deploys go through a front without retries: the drain alone keeps them
free of failed requests. The lost node needs Traefik's retry middleware, which the front then
models.

One swarm for the module, formed by the first test with `inv setup`; the tests run in file
order and each leaves the stack serving two healthy tasks. The node-loss test comes last: it
stops the worker's engine and starts it again.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from fabfile.deploy.rollout import SKIP_DRAIN_VAR
from tests.support.images import ImageSet
from tests.support.load import LoadGenerator
from tests.support.swarm import SwarmBed
from tests.support.swarm_front import SwarmFront
from tests.swarm.stack import (
    APP,
    DB_URL,
    DIAL_TIMEOUT,
    DOMAIN,
    REFRESH,
    RETRY_ATTEMPTS,
    THROTTLE,
    SwarmStack,
    output,
)

pytestmark = pytest.mark.e2e

RATE = 25.0
OVERLAY_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def swarm_bed(test_images: ImageSet) -> Iterator[SwarmBed]:
    """Two fresh engines of this module's own rather than the session's bed. In a whole-suite
    run where this file came right after `test_swarm_setup.py` on the same engines (whose
    manager had just been in and out of other swarms), the front, on the manager, could not
    reach most tasks over the overlay for the whole test ("No route to host"); with this
    file run alone, on fresh engines, that never happened."""
    bed = SwarmBed.create(2, images=[test_images.app_v1, test_images.app_v2,
                                     test_images.app_broken])
    yield bed
    bed.close()


@pytest.fixture(scope="module")
def swarm_env(swarm_bed: SwarmBed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[SwarmStack, list[subprocess.CompletedProcess[str]]]]:
    """A fresh swarm formed by `inv setup` (run twice), v1 deployed; the setup runs too."""
    swarm_bed.reset()
    stack = SwarmStack.create(tmp_path_factory.mktemp("swarm"), swarm_bed)
    try:
        setups = [stack.inv("setup"), stack.inv("setup")]
        yield stack, setups
    finally:
        stack.cleanup()


def serve(stack: SwarmStack, make_front: Callable[..., SwarmFront],
          retry_attempts: int = 1, refresh: float = REFRESH) -> SwarmFront:
    """Deploy v1 unless the stack serves already, start a front (Traefik's retry middleware
    modelled when `retry_attempts` > 1, with the rendered dialTimeout) and point the smoke test
    through it."""
    if not stack.tasks():
        stack.write_env()
        first = stack.inv("deploy", "--yes")
        assert first.returncode == 0, output(first)
    front = make_front(network=stack.network, project=stack.project, refresh=refresh,
                       throttle=THROTTLE, retry_attempts=retry_attempts,
                       connect_timeout=DIAL_TIMEOUT)
    stack.write_env(overrides={"deploy": {"smoke": {"urls": [f"{front.url}/health"],
                                                    "host_header": DOMAIN}}})
    front.wait_for(lambda t: len(t.servers_for(DOMAIN)) == 2, timeout=30)
    reach_overlay(stack, front)
    return front


def reach_overlay(stack: SwarmStack, front: SwarmFront, timeout: float = OVERLAY_TIMEOUT) -> None:
    """Wait until the front reaches every routed task over the overlay, so that the deploys
    under test start from a stack the front reaches, and a test bed whose overlay does not
    carry traffic fails here, as such, rather than as a failed deploy."""
    deadline = time.monotonic() + timeout
    while bad := front.unreachable(DOMAIN):
        if time.monotonic() > deadline:
            pytest.fail(f"the test bed's overlay: after {timeout:.0f}s the front still cannot "
                        f"reach {bad}\n{bed_report(stack, front)}")
        time.sleep(1.0)


def bed_report(stack: SwarmStack, front: SwarmFront, load: LoadGenerator | None = None) -> str:
    """What the front saw (its times also on `load`'s clock) and the engines logged about the
    overlay, for failure messages."""
    origin = load.started_at if load is not None else None
    return f"{front.summary(origin)}\n{stack.bed.overlay_log()}"


@pytest.fixture
def served(swarm_env: tuple[SwarmStack, list[subprocess.CompletedProcess[str]]],
           make_swarm_front: Callable[..., SwarmFront]) -> tuple[SwarmStack, SwarmFront]:
    """The stack serving behind a front without retries: rolling deploys rest on the drain
    alone."""
    stack, _ = swarm_env
    return stack, serve(stack, make_swarm_front)


def test_setup_forms_the_swarm_once_without_showing_a_join_token(
        swarm_env: tuple[SwarmStack, list[subprocess.CompletedProcess[str]]]) -> None:
    stack, (first, again) = swarm_env
    assert first.returncode == 0, output(first)
    manager, worker = stack.manager, stack.worker
    assert "swarm (manager " in first.stdout and "joined the swarm as a worker" in first.stdout
    assert again.returncode == 0, output(again)
    assert again.stdout.count("already set up (nothing to do)") == 2, output(again)
    nodes = manager.docker("node", "ls", "--format", "{{.Hostname}}={{.ManagerStatus}}")
    assert sorted(nodes.split()) == [f"{manager.name}=Leader", f"{worker.name}="], nodes
    labels = manager.docker("node", "inspect", "--format", "{{json .Spec.Labels}}", worker.name)
    assert f'"{stack.project}.app":"true"' in labels
    assert manager.docker("network", "inspect", "--format", "{{.Driver}} {{.Attachable}}",
                          stack.network) == "overlay true"
    token = manager.docker("swarm", "join-token", "-q", "worker")
    for proc in (first, again):
        assert "SWMTKN" not in output(proc) and token not in output(proc)
    assert not any(token in p.read_text(errors="replace")
                   for p in stack.app_dir.rglob("*") if p.is_file())


def test_zero_failed_requests_through_deploys_a_failure_and_rollbacks(
        served: tuple[SwarmStack, SwarmFront]) -> None:
    stack, front = served
    smoke_fails = stack.write_env("smokefail", {"deploy": {"smoke": {
        "urls": [f"{front.url}/health"], "host_header": "nowhere.test"}}})
    with LoadGenerator(f"{front.url}/version", host=DOMAIN, rate=RATE, max_seconds=900) as load:
        for i in range(10):
            version = "v2" if i % 2 == 0 else "v1"
            proc = stack.inv("deploy", "--yes", f"--version={version}")
            assert proc.returncode == 0, output(proc) + "\n" + bed_report(stack, front, load)
        assert stack.all_running("v1")
        broken = stack.inv("deploy", "--yes", "--version=broken")
        assert broken.returncode == 1, output(broken)
        assert "Swarm rolled the web service back by itself" in broken.stderr, output(broken)
        assert stack.all_running("v1")
        back = stack.inv("rollback", "--yes")
        assert back.returncode == 0, output(back)
        assert stack.all_running("v2")
        auto = stack.inv("deploy", "--yes", "--version=v1", env=smoke_fails)
        assert auto.returncode == 1 and "Rolled back to" in auto.stderr, output(auto)
        assert stack.all_running("v2")
        elapsed = load.now()
    print(f"swarm, with the drain, {elapsed:.0f}s of load: {load.summary()}")
    assert not load.failures(), load.summary() + "\n" + bed_report(stack, front, load)
    assert len(load.results()) >= 20 * elapsed * 0.9, load.summary()
    assert load.versions_seen() == {"v1", "v2"}
    results = [entry["result"] for entry in stack.audit()]
    assert results[-4:] == ["success", "failed", "success", "rolled-back"], results


def test_the_stand_in_fails_requests_when_the_drain_is_skipped(
        swarm_env: tuple[SwarmStack, list[subprocess.CompletedProcess[str]]],
        make_swarm_front: Callable[..., SwarmFront]) -> None:
    """Tasks started without the drain stop serving at SIGTERM, 2 s after Swarm marks them
    for shutdown, while the front routes to them until its next poll. The front here polls
    every 6 s (Traefik's default is 15 s) for a deploy configured for 2 s: the last two of
    three deploys replace tasks started without the drain."""
    stack, _ = swarm_env
    front = serve(stack, make_swarm_front, refresh=6.0)
    with LoadGenerator(f"{front.url}/version", host=DOMAIN, rate=RATE, max_seconds=300) as load:
        for version in ("v1", "v2", "v1"):
            proc = stack.inv("deploy", "--yes", f"--version={version}",
                             extra_env={SKIP_DRAIN_VAR: "1"})
            assert proc.returncode == 0, output(proc)
            assert "WITHOUT draining" in proc.stdout
        time.sleep(6.0 + THROTTLE + 1)
    print(f"swarm, without the drain: {load.summary()}")
    assert load.failures(), "skipping the drain should have failed requests: " + load.summary()
    again = stack.inv("deploy", "--yes", "--version=v2")
    assert again.returncode == 0, output(again)


def test_plan_status_logs_lock_and_doctor_on_the_swarm(
        served: tuple[SwarmStack, SwarmFront]) -> None:
    stack, _ = served
    version = "v1" if stack.all_running("v1") else "v2"
    plan = stack.inv("plan", "--json", f"--version={version}")
    assert plan.returncode == 0 and json.loads(plan.stdout)[0]["noop"], output(plan)
    status = stack.inv("status", "--json")
    assert status.returncode == 0, output(status)
    swarm = json.loads(status.stdout)[0]["swarm"]
    assert sorted(n["hostname"] for n in swarm["nodes"]) == sorted(
        [stack.manager.name, stack.worker.name])
    web = next(s for s in swarm["services"] if s["name"] == stack.web)
    assert web["replicas"] == 2 and web["update_state"] in ("completed", "none")
    text = stack.inv("status")
    assert "tasks (desired: running)" in text.stdout and stack.worker.name in text.stdout
    logs = stack.inv("logs", "--tail=5", "--service=web")
    assert logs.returncode == 0 and f"{stack.web}." in logs.stdout, output(logs)
    assert "listening on 8000" in logs.stdout or "GET /" in logs.stdout, output(logs)
    lock = stack.inv("lock.status")
    assert lock.returncode == 0 and "free" in lock.stdout, output(lock)
    doctor = stack.inv("doctor", "--only=ssh,docker,compose,swarm,ports")
    assert doctor.returncode == 0, output(doctor)
    assert doctor.stdout.count("ok    swarm") == 2, doctor.stdout
    assert "not needed: deploy.engine is swarm" in doctor.stdout
    for proc in (plan, status, text, logs, lock, doctor):
        assert DB_URL not in output(proc) and "tok-swarm" not in output(proc)
    task = stack.tasks()[0]
    node = next(n for n in stack.bed.nodes if n.name == task["Node"])
    cid = node.docker("ps", "-q", "--filter", f"label=com.docker.swarm.task.id={task['ID']}")
    environ = node.docker("exec", cid, "sh", "-c", "cat /proc/[0-9]*/environ | tr '\\0' '\\n'")
    assert f"DATABASE_URL={DB_URL}" in environ.splitlines()
    assert not any(DB_URL in p.read_text(errors="replace")
                   for p in stack.app_dir.rglob("*") if p.is_file())


def test_a_failing_migration_job_leaves_the_web_service_alone(
        served: tuple[SwarmStack, SwarmFront]) -> None:
    stack, _ = served
    before = [t["ID"] for t in stack.tasks()]
    current = stack.current()
    version = "v2" if stack.all_running("v1") else "v1"
    env = stack.write_env("failmig", {"app": {"env": {"MIGRATE_EXIT": "3"}}})
    proc = stack.inv("deploy", "--yes", f"--version={version}", env=env)
    assert proc.returncode == 1, output(proc)
    assert "the migration job `/app/migrate` failed on the swarm" in proc.stderr
    assert f"migrate {version}" in proc.stderr and "exit=3" in proc.stderr, output(proc)
    assert [t["ID"] for t in stack.tasks()] == before and stack.current() == current


def test_a_deploy_spreads_web_tasks_crowding_one_node(
        served: tuple[SwarmStack, SwarmFront]) -> None:
    """Swarm never moves a running task: after the manager was drained and made active again
    both web tasks stay on the worker. The next deploy, with nothing else to do, moves one
    back (one task more, then one fewer), with no failed request."""
    stack, front = served
    manager, worker = stack.manager, stack.worker
    version = "v1" if stack.all_running("v1") else "v2"
    manager.docker("node", "update", "--availability", "drain", manager.name)
    try:
        deadline = time.monotonic() + 90
        while not (stack.all_running(version)
                   and {t["Node"] for t in stack.tasks()} == {worker.name}):
            assert time.monotonic() < deadline, stack.tasks()
            time.sleep(0.5)
    finally:
        manager.docker("node", "update", "--availability", "active", manager.name)
    time.sleep(REFRESH + THROTTLE + 1)
    with LoadGenerator(f"{front.url}/version", host=DOMAIN, rate=RATE, max_seconds=300) as load:
        proc = stack.inv("deploy", "--yes", f"--version={version}")
        time.sleep(REFRESH + THROTTLE + 1)
    assert proc.returncode == 0, output(proc)
    assert f"2 web tasks on {worker.name}, none on {manager.name}" in proc.stdout, output(proc)
    assert f"the web tasks crowded {worker.name}" in output(proc), output(proc)
    tasks = stack.tasks()
    assert sorted(t["Node"] for t in tasks) == sorted([manager.name, worker.name]), tasks
    assert stack.all_running(version), tasks
    print(f"swarm, spreading the web tasks: {load.summary()}")
    assert not load.failures(), load.summary() + "\n" + bed_report(stack, front, load)


def test_a_node_lost_mid_deploy(
        swarm_env: tuple[SwarmStack, list[subprocess.CompletedProcess[str]]],
        make_swarm_front: Callable[..., SwarmFront]) -> None:
    """The worker's engine stops while a version rolls out: its tasks move to the manager, the
    deploy says so, and the stack ends on one release. Requests to the lost node's tasks
    fail to connect until Swarm marks the node down and the front's next poll: the rendered
    retry middleware sends them to the other node, so none fails."""
    stack, _ = swarm_env
    front = serve(stack, make_swarm_front, retry_attempts=RETRY_ATTEMPTS)
    worker = stack.worker
    assert sorted(t["Node"] for t in stack.tasks()) == sorted(
        [stack.manager.name, worker.name]), "deploys leave a task on each node"
    try:
        with LoadGenerator(f"{front.url}/version", host=DOMAIN, rate=RATE,
                           max_seconds=300) as load:
            target = "v2" if stack.all_running("v1") else "v1"
            deploy = stack.popen("deploy", "--yes", f"--version={target}")
            deadline = time.monotonic() + 60
            while not any(t["Image"].startswith(f"{APP}:{target}") for t in stack.tasks()):
                assert time.monotonic() < deadline, "the update never started"
                time.sleep(0.2)
            placed = sorted(f"{t['Name']} {t['Image'].split('@')[0]} {t['CurrentState']} on "
                            f"{t['Node']}" for t in stack.tasks())
            stopped = load.now()
            worker.stop_engine()
            stop_took = load.now() - stopped
            out, _ = deploy.communicate(timeout=300)
            time.sleep(REFRESH + THROTTLE + 1)
        print(out)
        print(f"swarm, a node lost mid-deploy: {load.summary()}")
        lost = (f"the worker's engine ({worker.name}) stopped from load +{stopped:.2f}s, in "
                f"{stop_took:.1f}s; the tasks then: {placed}")
        print(lost)
        print(front.summary(load.started_at))
        assert "went down" in out or "is down" in out, out
        tasks = stack.tasks()
        versions = {t["Image"].split("@")[0] for t in tasks}
        assert len(tasks) == 2 and len(versions) == 1, tasks
        assert {t["Node"] for t in tasks} == {stack.manager.name}, tasks
        current = stack.current()
        assert current is not None and current.endswith("-" + versions.pop().split(":")[1])
        assert not load.failures(), (
            f"{load.summary()}\n{lost}\n{bed_report(stack, front, load)}")
    finally:
        worker.start_engine()
        deadline = time.monotonic() + 60
        while "Ready" not in stack.manager.docker("node", "ls", "--filter",
                                                  f"name={worker.name}", "--format",
                                                  "{{.Status}}"):
            assert time.monotonic() < deadline, "the worker did not come back"
            time.sleep(0.5)
