"""The retention sweep: stored inputs and results older than the retention time go, as their job
records (which expire in Redis) have gone. One thread per worker, stopped with the worker."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from core.storage import Storage

log = logging.getLogger("sneaky.worker")
SWEEP_EVERY_SECONDS = 3600


class Sweeper:
    def __init__(self, storage: Callable[[], Storage], retention_seconds: int,
                 every_seconds: float = SWEEP_EVERY_SECONDS) -> None:
        self.storage = storage
        self.retention = retention_seconds
        self.every = every_seconds
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="retention-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end and wait for it: a sweep under way finishes first."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def sweep(self) -> int:
        removed = self.storage().delete_older_than(self.retention)
        if removed:
            log.info("retention sweep removed %d stored objects", removed)
        return removed

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.sweep()
            except Exception:
                log.warning("retention sweep failed", exc_info=True)
            self.stopping.wait(self.every)
