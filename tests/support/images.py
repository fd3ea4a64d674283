"""Local Docker images for the test bed, built from root filesystems (no registry is reachable).

- `shipyard-test/app:{v1,v2,broken,slow,maintenance}`: the fake web app of `testbed/app/`
  (busybox), one rootfs imported once per tag with its own `ENV`.
- `postgres:15`: Debian bookworm + PostgreSQL 15 (`testbed/postgres/`), so production code can
  name the official image unchanged. The debootstrap tarball is cached in `CACHE_DIR`.

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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .docker import DockerError, docker, ensure_docker, file_lock

TESTBED_DIR = Path(__file__).resolve().parents[2] / "testbed"
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


@dataclass(frozen=True)
class ImageSet:
    """Tags of the test-bed images, all present in the local Docker Engine."""

    app_v1: str = f"{APP_REPO}:v1"
    app_v2: str = f"{APP_REPO}:v2"
    app_broken: str = f"{APP_REPO}:broken"
    app_slow: str = f"{APP_REPO}:slow"
    app_maintenance: str = f"{APP_REPO}:maintenance"
    postgres: str = POSTGRES_TAG


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


def postgres_rootfs_tarball() -> Path:
    """The cached bookworm + PostgreSQL 15 rootfs tarball; debootstraps it when missing."""
    key = _postgres_rootfs_key()
    tarball = CACHE_DIR / f"postgres15-rootfs-{key}.tar"
    if tarball.exists():
        return tarball
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    print(f"images: debootstrapping {tarball} (a few minutes on a fresh machine)", file=sys.stderr)
    subprocess.run([str(TESTBED_DIR / "postgres" / "build-rootfs.sh"), str(tarball)], check=True)
    for old in CACHE_DIR.glob("postgres15-rootfs-*.tar"):
        if old != tarball:
            old.unlink(missing_ok=True)
    return tarball


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


def ensure_images() -> ImageSet:
    """Build the test-bed images that are missing or out of date; returns their tags.

    Idempotent and serialised across processes by a lock file; when everything is current it
    costs one `docker image inspect`.
    """
    ensure_docker()
    images = ImageSet()
    tags = [images.app_v1, images.app_v2, images.app_broken, images.app_slow,
            images.app_maintenance, images.postgres]
    current = image_labels(*tags)
    base = _app_base_digest()
    up_to_date = all(
        current.get(f"{APP_REPO}:{name}") == _app_digest(base, env)
        for name, env in APP_VARIANTS.items()
    ) and current.get(POSTGRES_TAG) == _postgres_digest(_postgres_rootfs_key())
    if up_to_date:
        return images
    with file_lock(CACHE_DIR / "images.lock"):
        current = image_labels(*tags)
        started = time.monotonic()
        built = _ensure_app_images(current) + _ensure_postgres_image(current)
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
