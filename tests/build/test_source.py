"""The commit an image is built from, on real git repositories in a temp directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fabfile.build import source
from fabfile.errors import UserError


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    (root / "app" / "main.py").write_text("print('v1')\n")
    (root / "docs.md").write_text("docs\n")
    git(root, "init", "-q")
    git(root, "remote", "add", "origin", "https://user:token@git.test/acme/roster.git")
    git(root, "add", ".")
    git(root, "commit", "-qm", "v1")
    return root


def inspect(repo: Path) -> source.Source:
    return source.inspect(repo / "app", repo / "app" / "Dockerfile")


def test_a_clean_tree_is_tagged_with_the_full_commit(repo: Path) -> None:
    src = inspect(repo)
    assert src.tag == src.revision == git(repo, "rev-parse", "HEAD") and len(src.tag) == 40
    assert not src.dirty
    assert src.url == "https://git.test/acme/roster.git", "credentials never reach a label"


def test_changes_outside_the_context_do_not_count(repo: Path) -> None:
    (repo / "docs.md").write_text("changed\n")
    (repo / "notes.txt").write_text("untracked\n")
    assert not inspect(repo).dirty


def test_a_dirty_tree_gets_a_tag_no_commit_can_have(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    (repo / "app" / "main.py").write_text("print('v2')\n")
    (repo / "app" / "new.py").write_text("x = 1\n")
    first = inspect(repo)
    assert first.dirty == ("app/main.py", "app/new.py")
    assert first.tag.startswith(f"{head}-dirty-") and len(first.diff_hash) == 12
    assert inspect(repo).tag == first.tag, "the same changes give the same tag"
    (repo / "app" / "new.py").write_text("x = 2\n")
    assert inspect(repo).tag != first.tag


def test_outside_git_there_is_no_commit(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(UserError, match=r"is not in a git repository.*pass --version=TAG"):
        source.inspect(tmp_path, tmp_path / "Dockerfile")
