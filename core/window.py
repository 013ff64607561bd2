"""Interactive jobs filled together on a GPU: jobs that arrive within SNEAKY_INTERACTIVE_WINDOW_MS of each
other share one forward pass, as bulk groups do. Off (0) by default: on a CPU a second job in a pass only
waits for the first.

With a window, an interactive job waits in one list and the ``interactive`` queue carries a token for it;
the worker that takes a token takes every job waiting, up to SNEAKY_BULK_GROUP_SIZE, and those that
arrive within the window after, and runs them as one group. No job waits longer than the window for
company; a token that finds its job already taken does nothing. Jobs are taken with their leases held
(one Lua script), so a worker that dies holding them cannot strand them.
"""

from __future__ import annotations

import time

import redis

from . import keyspace

# KEYS[1] the waiting list, KEYS[2] the leases; ARGV[1] how many at most, ARGV[2] the leases' expiry.
_TAKE = """
local taken = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))
if not taken then return {} end
for _, job_id in ipairs(taken) do redis.call('ZADD', KEYS[2], ARGV[2], job_id) end
return taken
"""


class InteractiveWindow:
    def __init__(self, client: redis.Redis, window_ms: int, most: int, lease_seconds: float,
                 namespace: str = keyspace.NAMESPACE) -> None:
        self.redis = client
        self.window = window_ms / 1000
        self.most = most
        self.lease_seconds = lease_seconds
        self.key = keyspace.interactive_waiting(namespace)
        self.leases = keyspace.leases(namespace)
        self._take = client.register_script(_TAKE)

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def put(self, job_id: str) -> None:
        self.redis.rpush(self.key, job_id)

    def withdraw(self, job_id: str) -> None:
        self.redis.lrem(self.key, 1, job_id)

    def take(self) -> list[str]:
        """Every job waiting (up to ``most``), and those that come within the window."""
        deadline = time.monotonic() + self.window
        taken = self._pop(self.most)
        while taken and len(taken) < self.most and time.monotonic() < deadline:
            time.sleep(min(0.002, max(0.0, deadline - time.monotonic())))
            taken += self._pop(self.most - len(taken))
        return taken

    def _pop(self, count: int) -> list[str]:
        popped = self._take(keys=[self.key, self.leases], args=[count, time.time() + self.lease_seconds])
        return [j.decode() if isinstance(j, bytes) else str(j) for j in popped]
