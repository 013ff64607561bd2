"""Bounded retries with exponential backoff and jitter, for storage and Redis calls that may fail
while a dependency restarts: a time budget (about a minute), not a count of tries."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from .metrics import REDIS_ERRORS, STORAGE_ERRORS
from .storage import StorageUnavailable

log = logging.getLogger("sneaky.retry")
T = TypeVar("T")
TRANSIENT = (StorageUnavailable, redis.ConnectionError, redis.TimeoutError)


def retrying(fn: Callable[[], T], what: str, budget: float = 60.0, base: float = 0.5, cap: float = 10.0) -> T:
    """Call ``fn`` until it succeeds or ``budget`` seconds of transient failures have passed: a
    dependency restarting (Redis from its append-only file, an S3 endpoint, a network healing) is
    waited for, however the jittered delays fall."""
    deadline = time.monotonic() + budget
    attempt = 0
    while True:
        try:
            return fn()
        except TRANSIENT as exc:
            counter = STORAGE_ERRORS if isinstance(exc, StorageUnavailable) else REDIS_ERRORS
            counter.labels("worker").inc()
            delay = random.uniform(0.5, 1.0) * min(cap, base * 2**attempt)
            if time.monotonic() + delay > deadline:
                raise
            attempt += 1
            log.warning("%s failed (%s); retry %d in %.1fs", what, type(exc).__name__, attempt, delay)
            time.sleep(delay)
