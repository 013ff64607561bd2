"""Bounded retries with exponential backoff and full jitter, for storage and Redis calls
that may fail while a dependency restarts."""

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


def retrying(fn: Callable[[], T], what: str, attempts: int = 8, base: float = 0.5, cap: float = 10.0) -> T:
    """Call ``fn`` until it succeeds or ``attempts`` transient failures (about a minute in all)."""
    for attempt in range(attempts):
        try:
            return fn()
        except TRANSIENT as exc:
            counter = STORAGE_ERRORS if isinstance(exc, StorageUnavailable) else REDIS_ERRORS
            counter.labels("worker").inc()
            if attempt == attempts - 1:
                raise
            delay = random.uniform(0, min(cap, base * 2**attempt))
            log.warning("%s failed (%s); retry %d/%d in %.1fs", what, type(exc).__name__, attempt + 1,
                        attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
