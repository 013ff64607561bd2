"""/v1/batches: many jobs at once from uploaded keys; progress; a manifest of every item.

A batch is accepted whole or not at all: every item is checked (keys, formats, pixel counts,
mask sizes, from the objects' headers) before anything is created, and a refusal lists each
bad item with its index and code (``invalid_items``, 422). Truncated files pass the header
check and fail as their job (``invalid_image``), so the manifest still accounts for them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from apiflask import APIBlueprint
from flask import Response, request, stream_with_context, url_for

from core import submission
from core.errors import SneakyError, translate
from core.jobs import Job
from core.photos import PhotoInfo, check_same_size

from .context import services
from .idempotency import idempotent
from .schemas import BatchRequest, BatchView, Manifest, ManifestQuery
from .tenants import current_tenant

bp = APIBlueprint("batches", __name__, url_prefix="/v1/batches", tag="batches")
Checked = tuple[PhotoInfo, str, str, dict[str, Any]]


@bp.post("")
@idempotent
@bp.input(BatchRequest, arg_name="body")
@bp.output(BatchView, status_code=202)
@bp.doc(responses={422: "invalid_items: the items that cannot be processed, each with index, code, detail"})
def create_batch(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a job for every item; bulk priority unless asked otherwise."""
    s = services()
    tenant, items, shared = current_tenant(), body["items"], body.get("mask_key")
    submission.check_webhook(s, body.get("webhook_url"))
    submission.check_capacity(s, body["priority"], -(-len(items) // s.settings.bulk_group_size))
    if bool(shared) == any(item.get("mask_key") for item in items) or (
            not shared and not all(item.get("mask_key") for item in items)):
        raise SneakyError("give every item its mask_key, or one shared mask_key for all items", "invalid_field")
    shared_info = None
    if shared:
        try:
            shared_info = submission.inspect_upload(s, tenant, shared, "mask", complete=False)
        except SneakyError as exc:
            raise SneakyError(f"shared mask: {exc.detail}", exc.code) from None

    def check(indexed: tuple[int, dict[str, Any]]) -> Checked | dict[str, Any]:
        index, item = indexed
        try:
            meta = submission.check_metadata(s, item.get("metadata"))
            photo, image_key = submission.inspect_upload(s, tenant, item["image_key"], "image", complete=False)
            mask, mask_key = shared_info or submission.inspect_upload(s, tenant, item["mask_key"], "mask",
                                                                      complete=False)
            check_same_size(photo, mask)
            return photo, image_key, mask_key, meta
        except Exception as exc:  # every item is accounted for, whatever went wrong with it
            error = translate(exc)
            if error.code in ("queue_unavailable", "storage_unavailable", "internal"):
                raise
            return {"index": index, "image_key": item["image_key"], "code": error.code, "detail": error.detail}

    with ThreadPoolExecutor(8) as pool:
        checked = list(pool.map(check, enumerate(items)))
    errors = [c for c in checked if isinstance(c, dict)]
    if errors:
        raise SneakyError(f"{len(errors)} of {len(items)} items cannot be processed; nothing was created",
                          "invalid_items", items=errors)
    engine = body.get("engine") or s.settings.default_engine
    jobs = [Job.new(tenant, engine, body["priority"], photo.as_input(), image_key=image_key, mask_key=mask_key,
                    metadata=meta, webhook_url=body.get("webhook_url"), grow=body["grow"])
            for photo, image_key, mask_key, meta in (c for c in checked if not isinstance(c, dict))]
    batch = submission.submit_batch(s, tenant, jobs, {"engine": engine, "priority": body["priority"],
                                                      "grow": body["grow"]})
    summary = s.batches.summary(batch)
    summary["job_ids"] = [j.id for j in jobs]
    return summary, 202, {"Location": url_for("batches.get_batch", batch_id=batch["id"])}


def _owned_batch(batch_id: str) -> dict[str, Any]:
    batch = services().batches.get(batch_id, current_tenant())
    if batch is None:
        raise SneakyError(f"no batch {batch_id}", "not_found")
    return batch


@bp.get("/<batch_id>")
@bp.output(BatchView)
def get_batch(batch_id: str) -> dict[str, Any]:
    """Counts by status and progress."""
    s = services()
    batch = _owned_batch(batch_id)
    return s.batches.summary(batch)


def _manifest_items(batch_id: str, start: int, count: int) -> list[dict[str, Any]]:
    s = services()
    return [{"index": start + offset,
             "job_id": job_id,
             "image_key": job.image_key.rsplit("/", 1)[-1] if job else "",
             "status": job.status if job else "deleted",
             "result_url": submission.result_url(s, job, request.host_url) if job else None,
             "error": job.error if job else None}
            for offset, (job_id, job) in enumerate(s.batches.jobs_of(batch_id, start, count))]


@bp.get("/<batch_id>/results")
@bp.input(ManifestQuery, location="query", arg_name="query")
@bp.output(Manifest)
@bp.doc(description="JSON a page at a time (`cursor`, `limit`; follow `next_cursor`), or the whole manifest as "
                    "CSV with `Accept: text/csv`, streamed a page at a time.")
def manifest(batch_id: str, query: dict[str, Any]) -> dict[str, Any] | Response:
    """Every item: its job, status, result URL or error."""
    batch = _owned_batch(batch_id)
    total = int(batch["total"])
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        return Response(stream_with_context(_csv_rows(batch_id, total)), mimetype="text/csv")
    start, count = query["cursor"], query["limit"]
    items = _manifest_items(batch_id, start, count)
    following = start + count
    return {"batch_id": batch_id, "items": items, "next_cursor": following if following < total else None}


def _csv_rows(batch_id: str, total: int, page: int = 1000) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["index", "job_id", "image_key", "status", "result_url", "error_code", "error_message"])
    for start in range(0, total, page):
        for item in _manifest_items(batch_id, start, page):
            error = item["error"] or {}
            writer.writerow([item["index"], item["job_id"], item["image_key"], item["status"],
                             item["result_url"] or "", error.get("code", ""), error.get("message", "")])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    if out.getvalue():
        yield out.getvalue()


@bp.post("/<batch_id>/cancel")
@bp.output(BatchView)
def cancel_batch(batch_id: str) -> dict[str, Any]:
    """Cancel every job of the batch as ``POST /v1/jobs/{id}/cancel`` would: queued ones end now
    (their inputs removed, their waiters woken), running ones stop at their next safe point."""
    s = services()
    batch = _owned_batch(batch_id)
    for _, job in s.batches.jobs_of(batch_id):
        if job is not None:
            submission.cancel(s, job)
    return s.batches.summary(s.batches.get(batch_id, current_tenant()) or batch)
