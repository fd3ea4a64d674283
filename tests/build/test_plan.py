"""The buildx command of a build, as data: tags, labels, secrets, and the cache per driver."""

from __future__ import annotations

from pathlib import Path

from fabfile.build import plan


def request(**kw: object) -> plan.Request:
    base: dict[str, object] = dict(
        image="registry.test:5000/roster", tag="abc123", context=Path("/src/app"),
        dockerfile=Path("/src/app/Dockerfile"), metadata_file=Path("/tmp/m.json"),
        labels=plan.labels("abc123", "https://git.test/roster", "2026-12-05T12:00:00Z"),
        args={"BASE_IMAGE": "python:3.12-slim"}, secrets={"pip_ca": Path("/etc/ca.pem")})
    base.update(kw)
    return plan.Request(**base)  # type: ignore[arg-type]


def test_docker_driver_pushes_inline_cache_and_the_cache_tag() -> None:
    argv = plan.argv(request(push=True))
    assert argv[:3] == ["docker", "buildx", "build"] and argv[-1] == "/src/app"
    assert argv[argv.index("--file") + 1] == "/src/app/Dockerfile"
    tags = [argv[i + 1] for i, a in enumerate(argv) if a == "--tag"]
    assert tags == ["registry.test:5000/roster:abc123", "registry.test:5000/roster:buildcache"]
    assert "org.opencontainers.image.revision=abc123" in argv
    assert "org.opencontainers.image.source=https://git.test/roster" in argv
    assert "org.opencontainers.image.created=2026-12-05T12:00:00Z" in argv
    assert argv[argv.index("--build-arg"):][:2] == ["--build-arg", "BASE_IMAGE=python:3.12-slim"]
    assert "id=pip_ca,src=/etc/ca.pem" in argv
    assert plan.cache_flags(request(push=True)) == [
        "--cache-from", "type=registry,ref=registry.test:5000/roster:buildcache",
        "--cache-to", "type=inline"]
    assert "--push" in argv and "--load" not in argv


def test_container_driver_exports_every_stage_to_a_cache_manifest() -> None:
    req = request(push=True, driver="docker-container")
    assert plan.cache_flags(req)[-1] == ("type=registry,ref=registry.test:5000/roster:"
                                         "buildcache,mode=max")
    tags = [a for i, a in enumerate(plan.argv(req)) if plan.argv(req)[i - 1] == "--tag"]
    assert tags == ["registry.test:5000/roster:abc123"], "the cache has its own manifest"


def test_local_builds_read_the_cache_and_load_the_image() -> None:
    req = request(push=False, driver="docker-container")
    assert plan.cache_flags(req) == ["--cache-from",
                                     "type=registry,ref=registry.test:5000/roster:buildcache"]
    assert plan.argv(req)[-2] == "--load"


def test_gha_and_no_cache() -> None:
    gha = plan.cache_flags(request(push=True, cache="gha", driver="docker-container"))
    assert gha == ["--cache-from", "type=gha,scope=registry.test:5000/roster",
                   "--cache-to", "type=gha,mode=max,scope=registry.test:5000/roster"]
    assert plan.cache_flags(request(cache="none")) == []


def test_the_docker_driver_pulls_the_cache_image_first() -> None:
    assert plan.cache_pull(request(push=True)) == [
        "docker", "pull", "--quiet", "registry.test:5000/roster:buildcache"]
    assert plan.cache_pull(request(push=True, driver="docker-container")) is None
    assert plan.cache_pull(request(cache="none")) is None
