"""Local Docker images for the test bed, built from root filesystems (no registry is reachable).

- `shipyard-test/app:{v1,v2,broken,slow,maintenance}`: the fake web app of `testbed/app/`
  (busybox), one rootfs imported once per tag with its own `ENV`.
- `postgres:15`: Debian bookworm + PostgreSQL 15 (`testbed/postgres/`), so production code can
  name the official image unchanged. The debootstrap tarball is cached in `CACHE_DIR`.
- `shipyard-test/python:3.11`: Debian bookworm + python3 (`testbed/python/`), the base image
  the roster app is built on here (a user's default is the official `python:3.12-slim`).
- `shipyard-test/roster:{v1,v2,broken-api}`: the reference app of `examples/roster-api/`, built
  from its Dockerfile with `docker buildx build` on that base: `v2` is the tree as it is,
  `v1` the previous release (`roster_release_files`), `broken-api` v2 with `ROSTER_FAULT=api`.

Every image carries the label `HASH_LABEL`, a digest of the inputs it was built from;
`ensure_images()` rebuilds exactly the images whose inputs changed and is a single
`docker image inspect` when all are current. Run `python -m tests.support.images` to build
them outside pytest.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .docker import DockerError, docker, ensure_docker, file_lock

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTBED_DIR = REPO_ROOT / "testbed"
CACHE_DIR = Path(os.environ.get("SHIPYARD_TESTBED_CACHE", "/var/cache/shipyard-testbed"))
HASH_LABEL = "org.shipyard.testbed.hash"

APP_REPO = "shipyard-test/app"
APP_PORT = 8000
APP_HEALTH_COMMAND = "wget -q -O /dev/null http://127.0.0.1:8000/health"
"""`app.healthcheck.command` for the busybox app (it has wget, not Python)."""
APP_HEALTHCHECK = f"test ! -e /tmp/drain && {APP_HEALTH_COMMAND}"
"""The same with the drain-file test, as a plain `docker run --health-cmd`."""
APP_VARIANTS: dict[str, dict[str, str]] = {
    "v1": {"APP_VERSION": "v1"},
    "v2": {"APP_VERSION": "v2"},
    "broken": {"APP_VERSION": "broken", "APP_MODE": "broken"},
    "slow": {"APP_VERSION": "slow", "START_DELAY": "5"},
    "maintenance": {"APP_VERSION": "maintenance", "APP_MODE": "maintenance"},
}
APP_PATH = "/bin:/sbin:/usr/bin:/usr/sbin"

POSTGRES_TAG = "postgres:15"
POSTGRES_ROOTFS_REPO = "shipyard-testbed/postgres-rootfs"

PYTHON_TAG = "shipyard-test/python:3.11"
ROSTER_REPO = "shipyard-test/roster"
ROSTER_DIR = REPO_ROOT / "examples" / "roster-api"
ROSTER_BUILD_INPUTS = ("Dockerfile", ".dockerignore", "requirements.lock", "alembic.ini",
                       "migrations", "roster_api")
"""What the app's image is built from (its `.dockerignore` admits the same)."""
ROSTER_VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "v1": ("v1", {}),
    "v2": ("v2", {}),
    "broken-api": ("v2", {"ROSTER_FAULT": "api"}),
}
"""tag -> (release of the tree it is built from, environment baked into the image)."""
ROSTER_HEALTHCHECK = "python -m roster_api.healthcheck"
"""The roster image's own health command (standard library only: the image has no wget/curl);
it exits 1 while the drain file exists, since /health then answers 503."""
PREVIOUS_RELEASE_MARK = "# since 0002"
"""Lines ending with it belong to revision 0002's feature; a file starting with it is 0002's."""
PIP_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
"""The host's CA bundle, handed to pip in the build as the `pip_ca` secret (TESTBED.md)."""


@dataclass(frozen=True)
class ImageSet:
    """Tags of the test-bed images, all present in the local Docker Engine."""

    app_v1: str = f"{APP_REPO}:v1"
    app_v2: str = f"{APP_REPO}:v2"
    app_broken: str = f"{APP_REPO}:broken"
    app_slow: str = f"{APP_REPO}:slow"
    app_maintenance: str = f"{APP_REPO}:maintenance"
    postgres: str = POSTGRES_TAG
    python: str = PYTHON_TAG
    roster_v1: str = f"{ROSTER_REPO}:v1"
    roster_v2: str = f"{ROSTER_REPO}:v2"
    roster_broken_api: str = f"{ROSTER_REPO}:broken-api"


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _files_digest(*paths: Path) -> str:
    return _digest(*(p.read_bytes() for p in paths))


def _busybox() -> Path:
    return Path(os.environ.get("BUSYBOX", "/bin/busybox"))


def _app_base_digest() -> str:
    app = TESTBED_DIR / "app"
    return _files_digest(app / "build-rootfs.sh", app / "serve", app / "handle",
                         app / "migrate", _busybox())


def _app_digest(base: str, env: Mapping[str, str]) -> str:
    return _digest(base, json.dumps(dict(sorted(env.items()))))


def _postgres_rootfs_key() -> str:
    return _files_digest(TESTBED_DIR / "postgres" / "build-rootfs.sh")[:16]


def _postgres_digest(rootfs_key: str) -> str:
    pg = TESTBED_DIR / "postgres"
    return _digest(rootfs_key, _files_digest(pg / "Dockerfile", pg / "docker-entrypoint.sh"))


def image_labels(*tags: str) -> dict[str, str]:
    """`HASH_LABEL` of each tag that exists locally (missing tags are left out)."""
    out = docker("image", "inspect", *tags, check=False)
    found: dict[str, str] = {}
    for image in json.loads(out) if out.strip() else []:
        label = ((image.get("Config") or {}).get("Labels") or {}).get(HASH_LABEL, "")
        for tag in image.get("RepoTags") or []:
            if tag in tags:
                found[tag] = label
    return found


def import_app_image(tag: str, env: Mapping[str, str], rootfs: Path | None = None) -> str:
    """Import the fake app as `tag` with `env` baked in (e.g. another APP_VERSION).

    Builds the rootfs first unless one is given. Returns the tag.
    """
    base = _app_base_digest()
    with tempfile.TemporaryDirectory(prefix="shipyard-app-") as tmp:
        if rootfs is None:
            rootfs = Path(tmp, "rootfs.tar")
            subprocess.run([str(TESTBED_DIR / "app" / "build-rootfs.sh"), str(rootfs)], check=True)
        changes = [
            f"ENV PATH={APP_PATH}",
            *(f"ENV {key}={value}" for key, value in sorted(env.items())),
            f"EXPOSE {APP_PORT}",
            "WORKDIR /app",
            'CMD ["/app/serve"]',
            f"LABEL {HASH_LABEL}={_app_digest(base, env)}",
        ]
        args = [arg for change in changes for arg in ("--change", change)]
        docker("import", *args, str(rootfs), tag)
    return tag


def pinned_app_image(variant: str) -> str:
    """The fake app's `variant` as this tree builds it, under a tag named by its digest
    (`shipyard-test/app:maintenance-<12 hex>`): unlike the plain tag, which a test session
    of another checkout may re-import from its own `testbed/app` at any time, it cannot
    change under a running test. Tagged by image id from the plain tag when that matches,
    else imported."""
    env = APP_VARIANTS[variant]
    wanted = _app_digest(_app_base_digest(), env)
    tag = f"{APP_REPO}:{variant}-{wanted[:12]}"
    if image_labels(tag).get(tag) == wanted:
        return tag
    found = docker("image", "inspect", "--format",
                   f'{{{{.Id}}}} {{{{index .Config.Labels "{HASH_LABEL}"}}}}',
                   f"{APP_REPO}:{variant}", check=False).split()
    if len(found) == 2 and found[1] == wanted:
        docker("tag", found[0], tag)
    else:
        import_app_image(tag, env)
    return tag


def _ensure_app_images(current: Mapping[str, str]) -> list[str]:
    base = _app_base_digest()
    stale = {
        f"{APP_REPO}:{name}": env for name, env in APP_VARIANTS.items()
        if current.get(f"{APP_REPO}:{name}") != _app_digest(base, env)
    }
    if not stale:
        return []
    with tempfile.TemporaryDirectory(prefix="shipyard-app-") as tmp:
        rootfs = Path(tmp, "rootfs.tar")
        subprocess.run([str(TESTBED_DIR / "app" / "build-rootfs.sh"), str(rootfs)], check=True)
        for tag, env in stale.items():
            import_app_image(tag, env, rootfs)
    return list(stale)


def _rootfs_tarball(script: Path, name: str, key: str) -> Path:
    """The rootfs tarball `script` writes, cached as `CACHE_DIR/<name>-rootfs-<key>.tar`
    (older keys are removed); built when missing."""
    tarball = CACHE_DIR / f"{name}-rootfs-{key}.tar"
    if tarball.exists():
        return tarball
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    print(f"images: debootstrapping {tarball} (a few minutes on a fresh machine)", file=sys.stderr)
    subprocess.run([str(script), str(tarball)], check=True)
    for old in CACHE_DIR.glob(f"{name}-rootfs-*.tar"):
        if old != tarball:
            old.unlink(missing_ok=True)
    return tarball


def postgres_rootfs_tarball() -> Path:
    """The cached bookworm + PostgreSQL 15 rootfs tarball; debootstraps it when missing."""
    return _rootfs_tarball(TESTBED_DIR / "postgres" / "build-rootfs.sh", "postgres15",
                           _postgres_rootfs_key())


def vps_rootfs_tarball() -> Path:
    """The cached fresh Debian 13 VPS rootfs (`testbed/vps/`): sshd and sudo, no Docker."""
    script = TESTBED_DIR / "vps" / "build-rootfs.sh"
    return _rootfs_tarball(script, "vps-trixie", _files_digest(script)[:16])


def _ensure_postgres_image(current: Mapping[str, str]) -> list[str]:
    key = _postgres_rootfs_key()
    wanted = _postgres_digest(key)
    if current.get(POSTGRES_TAG) == wanted:
        return []
    base_tag = f"{POSTGRES_ROOTFS_REPO}:{key}"
    if not image_labels(base_tag):
        docker("import", "--change", f"LABEL {HASH_LABEL}={key}",
               str(postgres_rootfs_tarball()), base_tag, timeout=900)
    docker(
        "build", "-q", "--build-arg", f"BASE={base_tag}", "--label", f"{HASH_LABEL}={wanted}",
        "-t", POSTGRES_TAG, str(TESTBED_DIR / "postgres"),
        env={"DOCKER_BUILDKIT": "0"}, timeout=900,
    )
    for old in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                      POSTGRES_ROOTFS_REPO).split():
        if old != base_tag:
            docker("rmi", old, check=False)
    return [POSTGRES_TAG]


def _python_rootfs_key() -> str:
    return _files_digest(TESTBED_DIR / "python" / "build-rootfs.sh")[:16]


def _ensure_python_image(current: Mapping[str, str]) -> list[str]:
    key = _python_rootfs_key()
    if current.get(PYTHON_TAG) == key:
        return []
    tarball = _rootfs_tarball(TESTBED_DIR / "python" / "build-rootfs.sh", "python3.11", key)
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        'CMD ["python3"]',
        f"LABEL {HASH_LABEL}={key}",
    ]
    with _replacing(PYTHON_TAG):
        docker("import", *(arg for change in changes for arg in ("--change", change)),
               str(tarball), PYTHON_TAG, timeout=900)
    return [PYTHON_TAG]


def roster_release_files(release: str, inputs: tuple[str, ...] = ROSTER_BUILD_INPUTS,
                         ) -> dict[str, bytes]:
    """The files of `examples/roster-api` named by `inputs` (files or folders), by relative
    path: as they are for `v2`; for `v1`, the previous release (head 0001): without the files
    whose first line is `PREVIOUS_RELEASE_MARK` and without the lines that end with it."""
    files: dict[str, bytes] = {}
    for name in inputs:
        top = ROSTER_DIR / name
        found = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in found:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files[path.relative_to(ROSTER_DIR).as_posix()] = path.read_bytes()
    if release == "v2":
        return files
    if release != "v1":
        raise ValueError(f"unknown roster release {release!r}: v1 or v2")
    previous: dict[str, bytes] = {}
    for name, data in files.items():
        if not name.endswith(".py"):
            previous[name] = data
            continue
        text = data.decode()
        if text.startswith(PREVIOUS_RELEASE_MARK):
            continue
        kept = [line for line in text.splitlines(keepends=True)
                if not line.rstrip().endswith(PREVIOUS_RELEASE_MARK)]
        previous[name] = "".join(kept).encode()
    return previous


def write_files(files: Mapping[str, bytes], dest: Path) -> Path:
    """Write `files` (relative path -> content) under `dest`; returns `dest`."""
    for name, data in files.items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return dest


def _roster_digests() -> dict[str, str]:
    """Tag -> the digest its image is built from, for every roster variant."""
    base = _python_rootfs_key()
    trees: dict[str, str] = {}
    for release in {release for release, _ in ROSTER_VARIANTS.values()}:
        files = roster_release_files(release)
        trees[release] = _digest(*(part for name in sorted(files) for part in (name, files[name])))
    out: dict[str, str] = {}
    for name, (release, env) in ROSTER_VARIANTS.items():
        parent = _digest(base, trees[release], release)
        out[f"{ROSTER_REPO}:{name}"] = (
            _digest(parent, name, json.dumps(dict(sorted(env.items())))) if env else parent)
    return out


def _buildx(*args: str, input: str | None = None) -> None:
    """`docker buildx build --load` on the default builder (the engine's own BuildKit)."""
    secret = (["--secret", f"id=pip_ca,src={PIP_CA_BUNDLE}"] if PIP_CA_BUNDLE.exists() else [])
    docker("buildx", "build", "--builder", "default", "--load", "--progress", "plain", *secret,
           *args, input=input, timeout=1800)


def _ensure_roster_images(current: Mapping[str, str]) -> list[str]:
    wanted = _roster_digests()
    built: list[str] = []
    for name, (release, env) in ROSTER_VARIANTS.items():
        tag = f"{ROSTER_REPO}:{name}"
        if current.get(tag) == wanted[tag] and not (env and f"{ROSTER_REPO}:{release}" in built):
            continue
        label = f"{HASH_LABEL}={wanted[tag]}"
        if env:
            dockerfile = "".join(f"ENV {key}={value}\n" for key, value in
                                 sorted({"APP_VERSION": name, **env}.items()))
            with _replacing(tag):
                _buildx("-t", tag, "--label", label, "-",
                        input=f"FROM {ROSTER_REPO}:{release}\n{dockerfile}")
        else:
            with tempfile.TemporaryDirectory(prefix="shipyard-roster-") as tmp, _replacing(tag):
                context = write_files(roster_release_files(release), Path(tmp))
                _buildx("-t", tag, "--label", label, "--build-arg", f"BASE_IMAGE={PYTHON_TAG}",
                        "--build-arg", f"APP_VERSION={name}", str(context))
        built.append(tag)
    return built


@contextmanager
def _replacing(tag: str) -> Iterator[None]:
    """Around a block that (re)makes `tag`: afterwards remove the image the tag named before
    if nothing names it any more, so rebuilds leave no dangling images behind."""
    old = docker("image", "inspect", "--format", "{{.Id}}", tag, check=False)
    yield
    if old and docker("image", "inspect", "--format", "{{.Id}}", tag) != old:
        tags = docker("image", "inspect", "--format", "{{len .RepoTags}}", old, check=False)
        if tags == "0":
            docker("image", "rm", old, check=False)


def _wanted_labels() -> dict[str, str]:
    """Tag -> the `HASH_LABEL` the current inputs give it, for every test-bed image."""
    base = _app_base_digest()
    wanted = {f"{APP_REPO}:{name}": _app_digest(base, env) for name, env in APP_VARIANTS.items()}
    wanted[POSTGRES_TAG] = _postgres_digest(_postgres_rootfs_key())
    wanted[PYTHON_TAG] = _python_rootfs_key()
    wanted.update(_roster_digests())
    return wanted


def ensure_images() -> ImageSet:
    """Build the test-bed images that are missing or out of date; returns their tags.

    Idempotent and serialised across processes by a lock file; when everything is current it
    costs one `docker image inspect`.
    """
    ensure_docker()
    images = ImageSet()
    wanted = _wanted_labels()
    tags = list(wanted)
    current = image_labels(*tags)
    if all(current.get(tag) == label for tag, label in wanted.items()):
        return images
    with file_lock(CACHE_DIR / "images.lock"):
        current = image_labels(*tags)
        started = time.monotonic()
        built = (_ensure_app_images(current) + _ensure_postgres_image(current)
                 + _ensure_python_image(current) + _ensure_roster_images(current))
        if built:
            print(f"images: built {', '.join(built)} in {time.monotonic() - started:.1f}s",
                  file=sys.stderr)
    missing = set(tags) - set(image_labels(*tags))
    if missing:
        raise DockerError(f"images still missing after the build: {sorted(missing)}")
    return images


if __name__ == "__main__":
    started = time.monotonic()
    print(ensure_images())
    print(f"ready in {time.monotonic() - started:.1f}s")
