"""/v1/batches: many jobs at once from uploaded keys; progress; a manifest of every item.

A batch is accepted whole or not at all: every item is checked (keys, formats, pixel counts,
mask sizes, from the objects' headers) before anything is created, and a refusal lists each
bad item with its index and code (``invalid_items``, 422). Truncated files pass the header
check and fail as their job (``invalid_image``), so the manifest still accounts for them.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor

from apiflask import APIBlueprint
from flask import Response, current_app, request, url_for

from core.batches import UPLOAD_KEY, upload_object_key
from core.jobs import QUEUED, RUNNING, new_job
from core.metrics import JOBS_SUBMITTED
from core.photos import HEADER_BYTES, PhotoInfo, inspect
from core.queue import enqueue
from core.storage import ObjectMissing
from pconv.images import InpaintError, check_mask_size

from .idempotency import idempotent
from .jobs import check_capacity, check_webhook, job_result_url
from .problems import Problem
from .schemas import BatchRequest, BatchView, Manifest
from .tenants import current_tenant

log = logging.getLogger("sneaky.api")
bp = APIBlueprint("batches", __name__, url_prefix="/v1/batches", tag="batches")


def services():
    return current_app.extensions["sneaky"]


def inspect_upload(s, tenant: str, key: str, what: str, complete: bool) -> tuple[PhotoInfo, str]:
    """Check an uploaded object from its bytes (or only its header); returns its info and storage key.
    Takes the services explicitly: it runs in worker threads, outside the request context."""
    if not key or not UPLOAD_KEY.match(key):
        raise InpaintError(f"{what} key {key!r} is not an upload key from /v1/uploads", "invalid_key")
    storage_key = upload_object_key(tenant, key)
    try:
        data = s.storage.get(storage_key, None if complete else HEADER_BYTES)
    except ObjectMissing:
        raise InpaintError(f"nothing was uploaded under {what} key {key}", "upload_missing") from None
    return inspect(data, s.settings.max_pixels, what, complete=complete), storage_key


@bp.post("")
@idempotent
@bp.input(BatchRequest, arg_name="body")
@bp.output(BatchView, status_code=202)
@bp.doc(responses={422: "invalid_items: the items that cannot be processed, each with index, code, detail"})
def create_batch(body):
    """Create a job for every item; bulk priority unless asked otherwise."""
    s = services()
    tenant, items, shared = current_tenant(), body["items"], body.get("mask_key")
    check_webhook(body.get("webhook_url"))
    check_capacity(body["priority"], -(-len(items) // s.settings.bulk_group_size))
    if bool(shared) == any(item.get("mask_key") for item in items) or (
            not shared and not all(item.get("mask_key") for item in items)):
        raise Problem("invalid_field", "give every item its mask_key, or one shared mask_key for all items")
    shared_info = None
    if shared:
        try:
            shared_info = inspect_upload(s, tenant, shared, "mask", complete=False)
        except InpaintError as exc:
            raise Problem(exc.code, f"shared mask: {exc}", 422) from None

    def check(indexed):
        index, item = indexed
        try:
            meta = item.get("metadata") or {}
            if len(json.dumps(meta).encode()) > s.settings.max_metadata_bytes:
                raise InpaintError("metadata over the size limit", "metadata_too_large")
            photo, image_key = inspect_upload(s, tenant, item["image_key"], "image", complete=False)
            mask, mask_key = shared_info or inspect_upload(s, tenant, item["mask_key"], "mask", complete=False)
            check_mask_size((photo.width, photo.height), (mask.width, mask.height))
            return photo, image_key, mask_key, meta
        except InpaintError as exc:
            return {"index": index, "image_key": item["image_key"], "code": exc.code, "detail": str(exc)}

    with ThreadPoolExecutor(8) as pool:
        checked = list(pool.map(check, enumerate(items)))
    errors = [c for c in checked if isinstance(c, dict)]
    if errors:
        raise Problem("invalid_items", f"{len(errors)} of {len(items)} items cannot be processed; nothing was created",
                      422, items=errors)
    engine = body.get("engine") or s.settings.default_engine
    jobs = [new_job(tenant, image_key, mask_key, photo.as_input(), engine, body["priority"], meta,
                    body.get("webhook_url"), mask_shared=bool(shared), grow=body["grow"])
            for photo, image_key, mask_key, meta in checked]
    batch = s.batches.create(tenant, jobs, {"engine": engine, "priority": body["priority"], "grow": body["grow"]})
    group = s.settings.bulk_group_size
    for start in range(0, len(jobs), group):
        try:
            enqueue(s.celery, [j["id"] for j in jobs[start : start + group]], body["priority"],
                    s.settings.job_time_limit)
        except Exception:
            # the batch exists: account for every job not handed to the queue rather than leave it queued forever
            for stranded in jobs[start:]:
                s.jobs.fail(stranded["id"], "queue_unavailable", "the job could not be queued")
            raise
    JOBS_SUBMITTED.labels(body["priority"], engine).inc(len(jobs))
    log.info("batch submitted", extra={"batch_id": batch["id"], "tenant": tenant, "jobs": len(jobs)})
    view = s.batches.summary({**batch, "total": len(jobs)}, jobs)
    view["job_ids"] = [j["id"] for j in jobs]
    return view, 202, {"Location": url_for("batches.get_batch", batch_id=batch["id"])}


def _owned_batch(batch_id: str) -> dict:
    batch = services().batches.get(batch_id, current_tenant())
    if batch is None:
        raise Problem("not_found", f"no batch {batch_id}")
    return batch


@bp.get("/<batch_id>")
@bp.output(BatchView)
def get_batch(batch_id):
    """Counts by status and progress."""
    s = services()
    batch = _owned_batch(batch_id)
    return s.batches.summary(batch, s.batches.jobs_of(batch_id))


@bp.get("/<batch_id>/results")
@bp.output(Manifest)
@bp.doc(description="JSON, or CSV with `Accept: text/csv`.")
def manifest(batch_id):
    """Every item: its job, status, result URL or error."""
    s = services()
    _owned_batch(batch_id)
    items = []
    for index, job in enumerate(s.batches.jobs_of(batch_id)):
        items.append({
            "index": index,
            "job_id": job["id"],
            "image_key": (job.get("image_key") or "").rsplit("/", 1)[-1],
            "status": job["status"],
            "result_url": job_result_url(job),
            "error": job.get("error"),
        })
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["index", "job_id", "image_key", "status", "result_url", "error_code", "error_message"])
        for item in items:
            error = item["error"] or {}
            writer.writerow([item["index"], item["job_id"], item["image_key"], item["status"],
                             item["result_url"] or "", error.get("code", ""), error.get("message", "")])
        return Response(out.getvalue(), mimetype="text/csv")
    return {"batch_id": batch_id, "items": items}


@bp.post("/<batch_id>/cancel")
@bp.output(BatchView)
def cancel_batch(batch_id):
    """Cancel every queued job of the batch; running ones stop at their next safe point."""
    s = services()
    batch = _owned_batch(batch_id)
    for job in s.batches.jobs_of(batch_id):
        if job["status"] == QUEUED and s.jobs.cancel(job["id"]).applied:
            continue
        if job["status"] in (QUEUED, RUNNING):
            s.jobs.request_cancel(job["id"])
    return s.batches.summary(batch, s.batches.jobs_of(batch_id))
