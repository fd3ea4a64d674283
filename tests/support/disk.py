"""Tiny filesystems for "disk full" tests: tmpfs mounts (root only), verified to work here."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def small_disk(size: str = "2m") -> Iterator[Path]:
    """A directory on a fresh tmpfs of `size` (mount's syntax: 512k, 2m, ...), unmounted after.

    Needs root (it mounts); writes past `size` fail with ENOSPC, as on a full disk.
    """
    mountpoint = Path(tempfile.mkdtemp(prefix="smalldisk-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mountpoint)],
        check=True, capture_output=True,
    )
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)
        mountpoint.rmdir()
