"""One live status line for long remote steps, fed by the lines the host scripts print."""

from __future__ import annotations

import time
from types import TracebackType

from rich.status import Status

from fabfile import ui

from .naming import human_size


class Progress:
    """A spinner whose text follows the phases (`phase ...`, `progress N`, `etag N ...`)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started = time.monotonic()
        self.phase = "starting"
        self.parts_total = 0
        self.parts_done = 0
        self.status: Status | None = None

    def __enter__(self) -> Progress:
        self.status = ui.console.status(self._text())
        self.status.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.status is not None:
            self.status.__exit__(kind, exc, tb)

    def _text(self) -> str:
        return f"{self.title}: {self.phase} ({time.monotonic() - self.started:.0f}s)"

    def line(self, text: str) -> None:
        """Handle one stdout line of a host script."""
        word, _, rest = text.partition(" ")
        args = rest.split()
        if word == "phase" and args:
            self._phase(args)
        elif word == "progress" and args and args[0].isdigit():
            self.phase = f"dumping, {human_size(int(args[0]))} written"
        elif word == "etag":
            self.parts_done += 1
            self.phase = f"uploading, part {self.parts_done} of {self.parts_total}"
        elif word == "dumped" and args and args[0].isdigit():
            ui.ok(f"dumped and compressed to {human_size(int(args[0]))}")
        elif word == "corrupt" and len(args) >= 1:
            ui.warn(f"the {'host cache' if args[0] == 'cache' else 'S3'} copy has the wrong "
                    "checksum")
        if self.status is not None:
            self.status.update(self._text())

    def _phase(self, args: list[str]) -> None:
        name = args[0]
        if name == "upload" and len(args) >= 3:
            self.parts_total = int(args[2])
            self.phase = (f"uploading {human_size(int(args[1]))}"
                          + (f" in {self.parts_total} parts" if self.parts_total > 1 else ""))
        elif name == "compress":
            self.phase = "compressing and hashing"
        elif name == "check-cache":
            self.phase = "checking the cached copy"
        elif name == "download":
            self.phase = "downloading from S3 and checking"
        elif name == "restore":
            source = args[1] if len(args) > 1 else "?"
            jobs = args[2] if len(args) > 2 else "?"
            ui.ok(f"checksum verified ({'host cache' if source == 'cache' else 'S3 copy'})")
            self.phase = f"pg_restore with {jobs} jobs"
        else:
            self.phase = name
