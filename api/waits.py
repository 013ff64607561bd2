"""Long polls that cannot starve the API: a request thread held by ``GET /v1/jobs/{id}?wait=`` is a
thread no other request gets, so each API process lets only SNEAKY_MAX_WAITS of them wait at once,
and one tenant at most half of those. A poll over the bound answers at once, as a poll without
``wait`` would (with ``Retry-After``): the client polls again, and every other request still finds
a free thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WaitSlots:
    def __init__(self, per_process: int) -> None:
        self.per_process = per_process
        self.per_tenant = max(1, per_process // 2)
        self.lock = threading.Lock()
        self.held: dict[str, int] = {}

    @contextmanager
    def slot(self, tenant: str) -> Iterator[bool]:
        """True inside the block if this request may wait; the slot is given back after it."""
        with self.lock:
            granted = (sum(self.held.values()) < self.per_process
                       and self.held.get(tenant, 0) < self.per_tenant)
            if granted:
                self.held[tenant] = self.held.get(tenant, 0) + 1
        try:
            yield granted
        finally:
            if granted:
                with self.lock:
                    self.held[tenant] -= 1
                    if not self.held[tenant]:
                        del self.held[tenant]
