"""The `docker buildx build` command of a build, as data (pure).

The build cache travels through the registry, so a fresh builder (a CI runner, a laptop
after `docker builder prune`) rebuilding a tree with one changed file reuses the layers of
the last push. Which cache a builder can carry depends on its BuildKit driver: Docker's
default `docker` driver exports only *inline* cache (metadata inside the pushed image,
`--cache-to type=inline`; the image is tagged `:buildcache` too so the next build finds it);
a `docker-container` builder (CI's setup-buildx-action) exports a separate cache manifest
with every stage (`type=registry,ref=IMAGE:buildcache,mode=max`); `gha` keeps it in GitHub
Actions' cache service instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

CacheMode = Literal["registry", "gha", "none"]
CACHE_TAG = "buildcache"
OCI = "org.opencontainers.image"


@dataclass(frozen=True)
class Request:
    """One build: what to build, how to tag it, where the cache and the image go."""

    image: str
    tag: str
    context: Path
    dockerfile: Path
    metadata_file: Path
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    secrets: Mapping[str, Path] = field(default_factory=dict)
    push: bool = False
    cache: CacheMode = "registry"
    driver: str = "docker"

    @property
    def ref(self) -> str:
        return f"{self.image}:{self.tag}"

    @property
    def cache_ref(self) -> str:
        return f"{self.image}:{CACHE_TAG}"


def labels(revision: str, source: str, created: str) -> dict[str, str]:
    """The OCI labels every image gets: which commit, from where, when."""
    return {f"{OCI}.revision": revision, f"{OCI}.source": source, f"{OCI}.created": created}


def cache_flags(req: Request) -> list[str]:
    if req.cache == "none":
        return []
    if req.cache == "gha":
        scope = f"scope={req.image}"
        return ["--cache-from", f"type=gha,{scope}", "--cache-to", f"type=gha,mode=max,{scope}"]
    flags = ["--cache-from", f"type=registry,ref={req.cache_ref}"]
    if req.driver == "docker":
        flags += ["--cache-to", "type=inline"]
    elif req.push:
        flags += ["--cache-to", f"type=registry,ref={req.cache_ref},mode=max"]
    return flags


def cache_pull(req: Request) -> list[str] | None:
    """`docker pull` of the cache image, for the docker driver; None when not needed."""
    if req.cache != "registry" or req.driver != "docker":
        return None
    return ["docker", "pull", "--quiet", req.cache_ref]


def argv(req: Request) -> list[str]:
    """`docker buildx build ...` for this request; the context comes last."""
    out = ["docker", "buildx", "build", "--progress=plain", "--file", str(req.dockerfile),
           "--metadata-file", str(req.metadata_file), "--tag", req.ref]
    if req.push and req.cache == "registry" and req.driver == "docker":
        out += ["--tag", req.cache_ref]
    for key, value in sorted(req.labels.items()):
        out += ["--label", f"{key}={value}"]
    for key, value in sorted(req.args.items()):
        out += ["--build-arg", f"{key}={value}"]
    for key, path in sorted(req.secrets.items()):
        out += ["--secret", f"id={key},src={path}"]
    if req.target:
        out += ["--target", req.target]
    if req.platform:
        out += ["--platform", req.platform]
    out += cache_flags(req)
    out.append("--push" if req.push else "--load")
    out.append(str(req.context))
    return out
