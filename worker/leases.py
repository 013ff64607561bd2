"""The worker's side of job leases (``core/leases.py``): a heartbeat that renews the leases of the
jobs this process runs, and the reaper that hands back jobs whose worker stopped renewing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from celery import Celery

from core.jobs import JobStatus
from core.leases import Leases
from core.metrics import JOBS_REQUEUED, LEASE_RENEW_FAILURES
from core.queue import enqueue
from core.services import Services

from .periodic import Periodic

log = logging.getLogger("sneaky.worker")


class Heartbeat:
    """The leases this process holds, renewed every third of the lease time from a thread that keeps
    beating while the model runs (torch and OpenCV release the GIL)."""

    def __init__(self, leases: Leases) -> None:
        self.leases = leases
        self.held: set[str] = set()
        self.lock = threading.Lock()
        self.thread = Periodic("lease-heartbeat", self.leases.seconds / 3, self.renew).start()

    def hold(self, *job_ids: str) -> None:
        with self.lock:
            self.held.update(job_ids)
        self.leases.hold(job_ids)

    def release(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        with self.lock:
            self.held.difference_update(ids)
        self.leases.release(ids)

    def renew(self) -> None:
        with self.lock:
            held = list(self.held)
        try:
            self.leases.hold(held)
        except Exception:
            LEASE_RENEW_FAILURES.inc()
            raise


def reap(services: Services, app: Celery) -> list[str]:
    """Put every job whose lease ran out back on its queue (running, or still queued: its worker died
    with the message in hand before starting it); returns their ids."""
    requeued = []
    for job_id in services.leases.expired():
        if not services.leases.claim(job_id):
            continue  # another reaper took it, or its worker renewed just in time
        job = services.jobs.get(job_id)
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            continue
        enqueue(app, [job_id], job.priority, services.settings.job_time_limit)
        JOBS_REQUEUED.inc()
        log.warning("job %s: its worker stopped renewing the lease (attempt %d); queued again", job_id,
                    job.attempts, extra={"job_id": job_id, "tenant": job.tenant})
        requeued.append(job_id)
    return requeued
