"""Background work a worker does on a clock: one daemon thread per duty, stopped with the worker.

The retention sweep (hourly), the lease heartbeat (every third of SNEAKY_LEASE_SECONDS, in each
process that runs jobs) and the lease reaper (as often, in each worker) are each a ``Periodic``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from core.storage import Storage

log = logging.getLogger("sneaky.worker")
SWEEP_EVERY_SECONDS = 3600


class Periodic:
    def __init__(self, name: str, every_seconds: float, duty: Callable[[], object]) -> None:
        self.name = name
        self.every = every_seconds
        self.duty = duty
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Periodic:
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end and wait for it: a round under way finishes first."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.duty()
            except Exception:  # the next round may succeed: a duty never ends its thread
                log.warning("%s failed", self.name, exc_info=True)
            self.stopping.wait(self.every)


def retention_sweeper(storage: Callable[[], Storage], retention_seconds: int,
                      every_seconds: float = SWEEP_EVERY_SECONDS) -> Periodic:
    """Stored inputs and results older than the retention go, as their records (which expire in
    Redis) have gone."""

    def sweep() -> int:
        removed = storage().delete_older_than(retention_seconds)
        if removed:
            log.info("retention sweep removed %d stored objects", removed)
        return removed

    return Periodic("retention-sweeper", every_seconds, sweep)
