"""Which commit an image is built from, and the tag that says so.

The tag is the full SHA of the commit checked out in the build context's git repository. A
tree with changes under the context (or to the Dockerfile) is not that commit: it is refused,
or with `allow_dirty` tagged `<sha>-dirty-<12 hex of the changes>`, so such an image can
never be mistaken for the commit's own (and the same changes give the same tag).
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fabfile.errors import UserError


@dataclass(frozen=True)
class Source:
    """The commit and state of the tree an image is built from."""

    revision: str
    dirty: tuple[str, ...]
    """Changed or untracked paths under the context, relative to the repository."""
    diff_hash: str
    url: str
    """Where the source lives: the `origin` remote (credentials stripped), else the path."""

    @property
    def tag(self) -> str:
        return f"{self.revision}-dirty-{self.diff_hash}" if self.dirty else self.revision


def _git(repo: Path, *args: str) -> bytes:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise UserError("git is not installed: pass --version=TAG to tag the image") from None
    if proc.returncode != 0:
        raise UserError(f"git {' '.join(args[:2])} failed in {repo}: "
                        f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
    return proc.stdout


def inspect(context: Path, dockerfile: Path) -> Source:
    """The commit checked out where `context` lives, and what differs from it there."""
    probe = subprocess.run(["git", "-C", str(context), "rev-parse", "--show-toplevel"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise UserError(f"the build context {context} is not in a git repository, so there is "
                        "no commit to tag the image with: pass --version=TAG")
    repo = Path(probe.stdout.strip())
    revision = _git(repo, "rev-parse", "--verify", "HEAD").decode().strip()
    paths = [str(p.resolve().relative_to(repo.resolve())) for p in (context, dockerfile)
             if p.resolve().is_relative_to(repo.resolve())]
    status = _git(repo, "status", "--porcelain", "-z", "--untracked-files=all", "--", *paths)
    dirty = tuple(sorted({entry[3:].decode(errors="replace")
                          for entry in status.split(b"\0") if len(entry) > 3}))
    digest = hashlib.sha256()
    if dirty:
        digest.update(_git(repo, "diff", "--binary", "HEAD", "--", *paths))
        for name in dirty:
            path = repo / name
            if path.is_file():
                digest.update(name.encode() + b"\0" + path.read_bytes())
    return Source(revision=revision, dirty=dirty, diff_hash=digest.hexdigest()[:12],
                  url=_origin(repo))


def _origin(repo: Path) -> str:
    proc = subprocess.run(["git", "-C", str(repo), "remote", "get-url", "origin"],
                          capture_output=True, text=True, check=False)
    url = proc.stdout.strip() if proc.returncode == 0 else ""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://{rest.split('@', 1)[1]}"
    return url or str(repo)
