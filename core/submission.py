"""Accepting work and letting it go: the one path every job takes in, cancel, delete, result links.

Both blueprints (``api/jobs.py`` for one job, multipart or JSON; ``api/batches.py`` for many) call
these; none of them knows HTTP. What is checked here is what a client sent, against the service's
limits: capacity, webhook targets, metadata, uploaded objects' headers. Every refusal is a
``SneakyError``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pconv import results

from . import strictjson
from .errors import ObjectMissing, SneakyError, translate
from .jobs import Job, JobStatus
from .metrics import JOBS_SUBMITTED
from .photos import HEADER_BYTES, PhotoInfo, check_same_size, inspect
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


def check_output(options: dict[str, Any], photo: PhotoInfo) -> None:
    """The result's format and quality a job asks for, against the photo's mode (pconv/results.py)."""
    results.check_output(options.get("output", "same"), options.get("quality"), photo.mode)


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


BATCH_PART = 1000  # items checked and written together: what a batch holds in memory at a time
LISTED_ERRORS = 1000  # a refused batch lists this many bad items (and counts them all)


def accept_batch(s: Services, tenant: str, options: dict[str, Any], items: Iterable[dict[str, Any]],
                 limit: int) -> dict[str, Any]:
    """A batch from ``items`` (an iterable: a request's lines can be read as they arrive), accepted whole
    or not at all. Items are checked from their uploads' headers and written a part at a time; the
    batch is invisible and none of its jobs queued until every item passed, then it is sealed and its
    jobs sent, SNEAKY_BULK_GROUP_SIZE to a message. A refusal (bad items, more than ``limit`` items,
    the queue full) leaves nothing behind. ``options``: engine, priority, grow, webhook_url, mask_key
    (one mask for every item)."""
    check_webhook(s, options.get("webhook_url"))
    results.check_output(options.get("output", "same"), options.get("quality"))  # once; each photo's mode below
    check_capacity(s, options["priority"])  # early, for the common case; again with the real count below
    engine = options.get("engine") or s.settings.default_engine
    shared = options.get("mask_key")
    shared_info = None
    if shared:
        try:
            shared_info = inspect_upload(s, tenant, shared, "mask", complete=False)
        except SneakyError as exc:
            raise SneakyError(f"shared mask: {exc.detail}", exc.code) from None

    def check(indexed: tuple[int, dict[str, Any]]) -> Job | dict[str, Any]:
        index, item = indexed
        try:
            if item.get("invalid"):  # an item the edge could not read carries its reason
                raise SneakyError(item["invalid"], "invalid_field")
            if bool(shared) == bool(item.get("mask_key")):
                raise SneakyError("give every item its mask_key, or one shared mask_key for all items",
                                  "invalid_field")
            meta = check_metadata(s, item.get("metadata"))
            photo, image_key = inspect_upload(s, tenant, item["image_key"], "image", complete=False)
            mask, mask_key = shared_info or inspect_upload(s, tenant, item["mask_key"], "mask", complete=False)
            check_same_size(photo, mask)
            check_output(options, photo)
            return Job.new(tenant, engine, options["priority"], photo.as_input(), image_key=image_key,
                           mask_key=mask_key, metadata=meta, webhook_url=options.get("webhook_url"),
                           grow=options["grow"], output=options.get("output", "same"),
                           quality=options.get("quality"))
        except Exception as exc:  # every item is accounted for, whatever went wrong with it
            error = translate(exc)
            if error.code in ("queue_unavailable", "storage_unavailable", "internal"):
                raise
            return {"index": index, "image_key": item.get("image_key", ""), "code": error.code,
                    "detail": error.detail}

    batch = s.batches.open(tenant, {"engine": engine, "priority": options["priority"], "grow": options["grow"],
                                    "output": options.get("output", "same"), "quality": options.get("quality") or ""})
    errors: list[dict[str, Any]] = []
    bad = seen = 0
    try:
        with ThreadPoolExecutor(8) as pool:
            for part in _parts(enumerate(items), BATCH_PART):
                seen += len(part)
                if seen > limit:
                    raise SneakyError(f"a batch holds at most {limit:,} items", "too_many_items")
                checked = list(pool.map(check, part))
                failed = [c for c in checked if isinstance(c, dict)]
                bad += len(failed)
                errors += failed[: LISTED_ERRORS - len(errors)]
                if not bad:  # once one item is bad nothing will be created: only the checking goes on
                    s.batches.add(batch, [c for c in checked if isinstance(c, Job)])
        if not seen:
            raise SneakyError("a batch needs at least one item", "invalid_field")
        if bad:
            listed = "" if bad == len(errors) else f" (the first {len(errors):,} are listed)"
            raise SneakyError(f"{bad:,} of {seen:,} items cannot be processed; nothing was created{listed}",
                              "invalid_items", items=errors)
        check_capacity(s, options["priority"], -(-batch["total"] // s.settings.bulk_group_size))
        s.batches.seal(batch)
    except BaseException:
        _quietly(lambda: s.batches.discard(batch))
        raise
    _send_batch(s, batch)
    JOBS_SUBMITTED.labels(options["priority"], engine).inc(batch["total"])
    log.info("batch submitted", extra={"batch_id": batch["id"], "tenant": tenant, "jobs": batch["total"]})
    return batch


def _parts(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    part: list[Any] = []
    for item in items:
        part.append(item)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def _send_batch(s: Services, batch: dict[str, Any]) -> None:
    """Enqueue a sealed batch's jobs a page at a time, SNEAKY_BULK_GROUP_SIZE to a message. Once the
    batch exists, a job the queue did not take fails ``queue_unavailable`` rather than stay queued."""
    size, priority, tenant = s.settings.bulk_group_size, batch["priority"], batch["tenant"]
    page = size * 125
    groups: list[list[str]] = []  # this page's groups not yet sent
    page_end = 0
    waiting = False  # this page's groups are in the tenants' rotation (tokens may not all be sent)
    try:
        for start in range(0, batch["total"], page):
            ids = s.batches.job_ids(batch["id"], start, page)
            page_end = start + len(ids)
            groups = [ids[i : i + size] for i in range(0, len(ids), size)]
            if priority == "bulk":  # tenants take turns (core/fairshare.py)
                s.fair.put(tenant, groups)
                waiting = True
                for _ in range(len(groups)):
                    enqueue_token(s.celery, s.settings.job_time_limit, size)
            else:
                while groups:
                    enqueue(s.celery, groups[0], priority, s.settings.job_time_limit)
                    groups.pop(0)
            groups, waiting = [], False
    except Exception:
        # what no message will run fails queue_unavailable: this page's groups still waiting, and every page after
        unsent = s.fair.withdraw(tenant, groups) if waiting else groups
        stranded = SneakyError("the job could not be queued", "queue_unavailable")
        for job_id in [j for group in unsent for j in group] + s.batches.job_ids(batch["id"], page_end):
            s.jobs.fail(job_id, stranded)
        raise


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

