"""/v1/batches: many jobs at once from uploaded keys; progress; a manifest of every item.

A batch is accepted whole or not at all: every item is checked (keys, formats, pixel counts,
mask sizes, from the objects' headers) before any of its jobs is queued or the batch can be seen, and
a refusal lists each bad item with its index and code (``invalid_items``, 422). Up to 10,000 items
come as one JSON body; up to SNEAKY_MAX_BATCH_ITEMS as NDJSON, read and checked a part at a time
(``core/submission.py``, ``accept_batch``). Truncated files pass the header check and fail as their
job (``invalid_image``), so the manifest still accounts for them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from functools import wraps
from typing import IO, Any

from apiflask import APIBlueprint
from flask import Response, request, stream_with_context, url_for
from marshmallow import ValidationError

from core import strictjson, submission
from core.errors import SneakyError

from . import idempotency
from .context import services
from .idempotency import idempotent
from .problems import validation_problem
from .schemas import JSON_BATCH_ITEMS, BatchItem, BatchOptions, BatchRequest, BatchView, Manifest, ManifestQuery
from .tenants import current_tenant

bp = APIBlueprint("batches", __name__, url_prefix="/v1/batches", tag="batches")


NDJSON = "application/x-ndjson"
MAX_LINE_BYTES = 64 * 1024  # one NDJSON item: keys and up to SNEAKY_MAX_METADATA_BYTES of metadata


def by_ndjson(view: Callable[..., Any]) -> Callable[..., Any]:
    """An ``application/x-ndjson`` body goes to ``create_batch_ndjson``, read a line at a time; any other
    to the JSON view below it. (APIFlask takes one body schema per route; api/openapi.py lists both.)"""

    @wraps(view)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        if request.mimetype == NDJSON:
            return create_batch_ndjson()
        return view(*args, **kwargs)

    return dispatch


@bp.post("")
@idempotent
@by_ndjson
@bp.input(BatchRequest, arg_name="body")
@bp.output(BatchView, status_code=202)
@bp.doc(responses={422: "invalid_items: the items that cannot be processed, each with index, code, detail; "
                        "too_many_items"})
def create_batch(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a job for every item; bulk priority unless asked otherwise. Up to 10,000 items in a JSON
    body; up to SNEAKY_MAX_BATCH_ITEMS as NDJSON (``Content-Type: application/x-ndjson``: the first line
    the batch's settings, then one item per line), which the API reads a part at a time."""
    items = body.pop("items")
    if len(items) > JSON_BATCH_ITEMS:
        raise SneakyError(f"a JSON body holds at most {JSON_BATCH_ITEMS:,} items; send a larger batch as NDJSON "
                          "(Content-Type: application/x-ndjson)", "too_many_items")
    # the whole body is here: a mask rule broken anywhere refuses it at once (NDJSON lists such items instead)
    if any(bool(body.get("mask_key")) == bool(item.get("mask_key")) for item in items):
        raise SneakyError("give every item its mask_key, or one shared mask_key for all items", "invalid_field")
    return _accepted(submission.accept_batch(services(), current_tenant(), body, items, JSON_BATCH_ITEMS))


def create_batch_ndjson() -> tuple[dict[str, Any], int, dict[str, str]]:
    s = services()
    lines = _ndjson_lines(idempotency.body_stream())
    try:
        options = BatchOptions().load(next(lines, None) or {})
    except ValidationError as exc:
        raise validation_problem({"json": exc.messages}) from None
    items = (_ndjson_item(index, line) for index, line in enumerate(lines))
    return _accepted(submission.accept_batch(s, current_tenant(), options, items, s.settings.max_batch_items))


def _ndjson_lines(stream: IO[bytes]) -> Iterator[Any]:
    """Each non-empty line parsed strictly (core/strictjson.py); a line that is not JSON is refused with its number."""
    for number, line in enumerate(iter(lambda: stream.readline(MAX_LINE_BYTES + 1), b""), start=1):
        if len(line) > MAX_LINE_BYTES:
            raise SneakyError(f"line {number} is longer than {MAX_LINE_BYTES:,} bytes", "too_large")
        if not line.strip():
            continue
        try:
            yield strictjson.loads(line)
        except ValueError as exc:
            raise SneakyError(f"line {number} is not acceptable JSON: {exc}", "invalid_json") from None


def _ndjson_item(index: int, value: Any) -> dict[str, Any]:
    """An item as the JSON body's schema takes it; one that does not fit is passed on as it is and
    refused in the batch's list of bad items, with its index."""
    try:
        return BatchItem().load(value if isinstance(value, dict) else {})
    except ValidationError as exc:
        return {"image_key": str(value.get("image_key", "")) if isinstance(value, dict) else "",
                "invalid": f"item {index}: {exc.messages}"}


def _accepted(batch: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    s = services()
    summary = s.batches.summary(batch)
    if batch["total"] <= JSON_BATCH_ITEMS:
        summary["job_ids"] = s.batches.job_ids(batch["id"])
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
    for start in range(0, int(batch["total"]), 1000):  # a page of jobs in memory at a time, whatever the size
        for _, job in s.batches.jobs_of(batch_id, start, 1000):
            if job is not None:
                submission.cancel(s, job)
    return s.batches.summary(s.batches.get(batch_id, current_tenant()) or batch)
