"""Leases on running jobs: a worker host that vanishes (a preempted GPU node) must not strand its jobs
until the broker's visibility timeout (81 minutes with the defaults).

A worker holds a lease on every job it runs and renews it from a heartbeat thread (every third of
SNEAKY_LEASE_SECONDS, also while the model runs). A reaper in every worker finds leases past their
expiry and puts those jobs back on their queue; the next start counts an attempt (the ``poisoned``
rule still holds) and fences the old one out (``JobStore`` transitions check the attempt), so a late
original never stores over the re-run. All leases are one sorted set, scored by expiry.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from . import keyspace


class Leases:
    def __init__(self, client: redis.Redis, seconds: float, namespace: str = keyspace.NAMESPACE) -> None:
        self.redis = client
        self.seconds = seconds
        self.key = keyspace.leases(namespace)

    def hold(self, job_ids: Iterable[str]) -> None:
        """Take or renew the leases: each runs out ``seconds`` from now."""
        expiry = time.time() + self.seconds
        mapping = {job_id: expiry for job_id in job_ids}
        if mapping:
            self.redis.zadd(self.key, mapping)

    def release(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        if ids:
            self.redis.zrem(self.key, *ids)

    def expired(self, now: float | None = None, limit: int = 100) -> list[str]:
        now = time.time() if now is None else now
        return [j.decode() for j in self.redis.zrangebyscore(self.key, "-inf", now, start=0, num=limit)]

    def claim(self, job_id: str, now: float | None = None) -> bool:
        """Take an expired lease away from its holder: True for exactly one caller (several reapers
        may see the same expiry), and only while it is still expired (a late renewal keeps it)."""
        now = time.time() if now is None else now
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.key)
                    score = pipe.zscore(self.key, job_id)
                    if score is None or score > now:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.zrem(self.key, job_id)
                    return bool(pipe.execute()[0])
                except redis.WatchError:
                    continue
