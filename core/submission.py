"""Accepting work and letting it go: the one path every job takes in, cancel, delete, result links.

Both blueprints (``api/jobs.py`` for one job, multipart or JSON; ``api/batches.py`` for many) call
these; none of them knows HTTP. What is checked here is what a client sent, against the service's
limits: capacity, webhook targets, metadata, uploaded objects' headers. Every refusal is a
``SneakyError``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from . import strictjson
from .errors import ObjectMissing, SneakyError
from .jobs import Job, JobStatus
from .metrics import JOBS_SUBMITTED
from .photos import HEADER_BYTES, PhotoInfo, inspect
from .queue import RUN_WAITING, enqueue, enqueue_token, queue_depth
from .services import Services
from .uploads import UPLOAD_KEY, upload_object_key
from .webhooks import check_webhook_url

log = logging.getLogger("sneaky.api")
RESULT_PATH = "/v1/jobs/{job_id}/result"  # the API's download route (api/jobs.py), for links made elsewhere


def check_capacity(s: Services, priority: str, messages: int = 1) -> None:
    """Back-pressure: refuse work the queue cannot take now rather than let it grow without bound."""
    limit = s.settings.max_queued_interactive if priority == "interactive" else s.settings.max_queued_bulk
    depth = queue_depth(s.celery, s.redis, priority)
    if depth + messages > limit:
        raise SneakyError(f"the {priority} queue holds {depth:,} messages (limit {limit:,}); retry later",
                          "queue_full", headers={"Retry-After": "5"})


def check_webhook(s: Services, url: str | None) -> None:
    if url:
        check_webhook_url(url, s.settings.webhook_allow_private == "1")


def check_metadata(s: Services, value: Any) -> dict[str, Any]:
    """Metadata as a JSON object of at most SNEAKY_MAX_METADATA_BYTES; a form sends it as text."""
    if value is None or value == "":
        return {}
    text = value if isinstance(value, str) else json.dumps(value)
    size, limit = len(text.encode()), s.settings.max_metadata_bytes
    if size > limit:
        raise SneakyError(f"metadata is {size:,} bytes; at most {limit:,} allowed", "metadata_too_large")
    try:
        parsed = strictjson.loads(text)
    except ValueError as exc:
        raise SneakyError(f"metadata must be a JSON object: {exc}", "invalid_metadata") from None
    if not isinstance(parsed, dict):
        raise SneakyError("metadata must be a JSON object", "invalid_metadata")
    return parsed


def inspect_upload(s: Services, tenant: str, key: str, what: str, complete: bool) -> tuple[PhotoInfo, str]:
    """Check an object a client put through /v1/uploads from its bytes (or only its header, for a
    batch's many); returns its info and storage key."""
    if not key or not UPLOAD_KEY.match(key):
        raise SneakyError(f"{what} key {key!r} is not an upload key from /v1/uploads", "invalid_key")
    storage_key = upload_object_key(tenant, key)
    try:
        data = s.storage.get(storage_key, None if complete else HEADER_BYTES)
    except ObjectMissing:
        raise SneakyError(f"nothing was uploaded under {what} key {key}", "upload_missing") from None
    return inspect(data, s.settings.max_pixels, what, complete=complete), storage_key


def store_inputs(s: Services, job: Job, image: bytes, mask: bytes, content_type: str) -> None:
    """A multipart job's files, under the job's own keys."""
    job.image_key, job.mask_key = job.object_key("image"), job.object_key("mask")
    try:
        s.storage.put(job.image_key, image, content_type)
        s.storage.put(job.mask_key, mask, "application/octet-stream")
    except Exception:
        _quietly(lambda: s.storage.delete(job.image_key, job.mask_key))
        raise


def submit(s: Services, job: Job, inputs_stored_here: bool = False) -> Job:
    """Record and enqueue a job whose inputs are stored; on any failure remove the record (and
    the inputs if this request stored them), so the client never has half a job it was not told of.
    Returns the job as recorded (queued: a worker may start it the moment it is enqueued)."""
    windowed = job.priority == "interactive" and s.window.enabled
    try:
        s.jobs.create(job)
        if windowed:  # filled with whatever else arrives within the window (core/window.py)
            s.window.put(job.id)
            enqueue_token(s.celery, s.settings.job_time_limit, s.settings.bulk_group_size, RUN_WAITING,
                          "interactive")
        else:
            enqueue(s.celery, [job.id], job.priority, s.settings.job_time_limit)
    except Exception:
        if windowed:
            _quietly(lambda: s.window.withdraw(job.id))
        _quietly(lambda: s.jobs.delete(job))
        if inputs_stored_here:
            _quietly(lambda: s.storage.delete(job.image_key, job.mask_key))
        raise
    JOBS_SUBMITTED.labels(job.priority, job.engine).inc()
    log.info("job submitted", extra={"job_id": job.id, "tenant": job.tenant, "priority": job.priority,
                                     "engine": job.engine})
    return job


def submit_batch(s: Services, tenant: str, jobs: list[Job], settings: dict[str, Any]) -> dict[str, Any]:
    """Record a batch and its jobs, then enqueue them SNEAKY_BULK_GROUP_SIZE to a message. Once the
    batch exists, a job the queue did not take fails ``queue_unavailable`` rather than stay queued."""
    batch = s.batches.create(tenant, jobs, settings)
    size = s.settings.bulk_group_size
    groups = [[j.id for j in jobs[start : start + size]] for start in range(0, len(jobs), size)]
    unsent = list(groups)
    try:
        if settings["priority"] == "bulk":  # tenants take turns (core/fairshare.py)
            s.fair.put(tenant, groups)
            for _ in groups:
                enqueue_token(s.celery, s.settings.job_time_limit, size)
        else:
            while unsent:
                enqueue(s.celery, unsent[0], settings["priority"], s.settings.job_time_limit)
                unsent.pop(0)
    except Exception:
        # the batch exists: every job no message will run fails queue_unavailable rather than stay queued
        if settings["priority"] == "bulk":
            unsent = s.fair.withdraw(tenant, groups)
        stranded = SneakyError("the job could not be queued", "queue_unavailable")
        for job_id in (job_id for group in unsent for job_id in group):
            s.jobs.fail(job_id, stranded)
        raise
    JOBS_SUBMITTED.labels(settings["priority"], settings["engine"]).inc(len(jobs))
    log.info("batch submitted", extra={"batch_id": batch["id"], "tenant": tenant, "jobs": len(jobs)})
    return batch


def cancel(s: Services, job: Job) -> bool:
    """Cancel one job, the same for a job and every job of a batch: a queued one ends now (its
    waiters wake, its inputs go); a running one stops at its worker's next safe point. False if
    it had already ended."""
    if job.status == JobStatus.QUEUED and s.jobs.cancel(job.id).applied:  # its waiters wake with it
        s.storage.delete(*job.stored_keys)
        return True
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        s.jobs.request_cancel(job.id)  # the worker checks between forward passes and before it stores
        return True
    return False


def delete(s: Services, job: Job) -> None:
    """The record and every object that is the job's alone."""
    s.jobs.delete(job)
    s.storage.delete(*job.stored_keys)


def result_url(s: Services, job: Job, api_base: str | None) -> str | None:
    """Where a succeeded job's result is downloaded: a short-lived storage URL (S3), or the API's
    own route under ``api_base`` (local storage; None where no base is known)."""
    if job.status != JobStatus.SUCCEEDED or not job.result_key:
        return None
    url = s.storage.result_url(job.result_key, s.settings.result_url_seconds, job.result_filename)
    base = s.settings.public_url or api_base
    if url or not base:
        return url
    return base.rstrip("/") + RESULT_PATH.format(job_id=job.id)


def _quietly(cleanup: Any) -> None:
    try:
        cleanup()
    except Exception:  # the original error is what the client must see
        log.warning("cleanup after a failed submit failed", exc_info=True)

