"""The cutover's deploy on PostgreSQL, started while the migration runs.

The deploy (`execute.deploy` with a `gate`) runs in a thread of its own, on its own SSH
connections: it uploads the release, starts the new web containers held out of the proxy's
pool and waits until they are ready, then stops at the gate. Meanwhile the main thread loads
the database. Only when the migration and its verification passed does the gate open: the
new containers are verified against the loaded database and released, and the window ends a
health check and the proxy's throttle later, instead of a whole start of the app later.
When the migration fails, the gate refuses: the held containers are removed and the old
ones stay as they were, for the cutover to put SQLite back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from fabfile.deploy.execute import Report
from fabfile.errors import UserError

Deploy = Callable[[Callable[[], None]], Report]
"""Runs the deploy, calling its argument (the gate) before releasing the new containers."""


class GatedDeploy:
    def __init__(self, deploy: Deploy) -> None:
        self._deploy = deploy
        self._decided = threading.Event()
        self._refusal: str | None = None
        self._error: BaseException | None = None
        self.report: Report | None = None
        self._thread = threading.Thread(target=self._main, name="cutover-deploy", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def failed(self) -> bool:
        """The deploy ended with an error before the gate was decided."""
        return not self._thread.is_alive() and self._error is not None

    def open(self) -> None:
        self._decide(None)

    def join(self) -> Report:
        """Wait for the deploy to end; its report, or raise what it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self.report is not None
        return self.report

    def settle(self, why: str) -> None:
        """On the way out of a failure: refuse the gate (if still undecided), wait for the
        deploy to clean up after itself, and keep its error to itself (the caller's own
        error says what went wrong)."""
        self._decide(why)
        self._thread.join()

    def _decide(self, refusal: str | None) -> None:
        if not self._decided.is_set():
            self._refusal = refusal
            self._decided.set()

    def _gate(self) -> None:
        self._decided.wait()
        if self._refusal is not None:
            raise UserError(self._refusal)

    def _main(self) -> None:
        try:
            self.report = self._deploy(self._gate)
        except BaseException as exc:  # handed over to the main thread (`join`)
            self._error = exc
