"""Stopping a worker without stranding its job.

SIGTERM (a drain, a scale-down, ``sneaky up`` stopping) reaches the worker's main process: Celery stops
taking messages and waits for the job in hand (its warm shutdown). That job gets
SNEAKY_STOP_GRACE_SECONDS to end; the deployments give the process longer than that before they kill
it (``terminationGracePeriodSeconds``, compose ``stop_grace_period``). Past the grace period, the
pipeline's next safe point hands the job back: running → queued, the attempt uncounted, a new message
on its queue, so another worker takes it at once instead of after a lease or a visibility timeout.

The main process tells its pool children through a file named after its pid (a child knows its
parent's pid; no Redis round trip between forward passes).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


class HandBack(Exception):
    """The worker is stopping and the grace period is over: give the jobs back."""


def _marker(main_pid: int) -> Path:
    return Path(tempfile.gettempdir()) / f"sneaky-drain-{main_pid}"


def begin(grace_seconds: float) -> None:
    """In the main process, when the stop begins."""
    _marker(os.getpid()).write_text(str(time.time() + grace_seconds))


def end() -> None:
    _marker(os.getpid()).unlink(missing_ok=True)


def _grace_ends() -> float | None:
    for pid in (os.getppid(), os.getpid()):
        try:
            return float(_marker(pid).read_text())
        except (OSError, ValueError):
            continue
    return None


def grace_over() -> bool:
    """In whichever process runs the job (a pool child, or the main process itself)."""
    ends = _grace_ends()
    return ends is not None and time.time() > ends


def stopping() -> bool:
    """A stop has begun: take no more work in hand than the job being done (a group read ahead, say)."""
    return _grace_ends() is not None
