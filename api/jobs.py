"""/v1/jobs: submit, read, list, download, cancel, delete."""

from __future__ import annotations

import json
import logging

from apiflask import APIBlueprint
from flask import current_app, request, send_file, url_for, redirect
import io

from core.jobs import QUEUED, RUNNING, SUCCEEDED, new_job_id, object_key, public_view, stored_keys
from core.photos import EXTENSIONS, inspect_pair
from core.queue import enqueue
from pconv.images import InpaintError

from .problems import Problem
from .schemas import Job, JobForm, JobList, ListQuery
from .tenants import current_tenant

log = logging.getLogger("sneaky.api")
bp = APIBlueprint("jobs", __name__, url_prefix="/v1/jobs", tag="jobs")


def services():
    return current_app.extensions["sneaky"]


def _read_upload(field, name: str, limit: int) -> bytes:
    data = field.read(limit + 1)
    if len(data) > limit:
        raise Problem("too_large", f"the {name} is larger than {limit:,} bytes")
    return data


def _parse_metadata(raw: str | None, limit: int) -> dict:
    if raw is None or raw == "":
        return {}
    if len(raw.encode()) > limit:
        raise Problem("metadata_too_large", f"metadata is {len(raw.encode()):,} bytes; at most {limit:,} allowed")
    try:
        value = json.loads(raw)
    except ValueError:
        raise Problem("invalid_metadata", "metadata must be a JSON object") from None
    if not isinstance(value, dict):
        raise Problem("invalid_metadata", "metadata must be a JSON object")
    return value


def _view(job: dict) -> dict:
    url = None
    if job["status"] == SUCCEEDED and job.get("result_key"):
        s = services()
        url = s.storage.result_url(job["result_key"], s.settings.result_url_seconds, _result_filename(job))
        url = url or url_for("jobs.get_result", job_id=job["id"], _external=True)
    return public_view(job, url)


def _result_filename(job: dict) -> str:
    return f"{job['id']}{EXTENSIONS.get((job.get('result') or {}).get('format', ''), '')}"


def _owned_job(job_id: str) -> dict:
    job = services().jobs.get(job_id, current_tenant())
    if job is None:
        raise Problem("not_found", f"no job {job_id}")
    return job


@bp.post("")
@bp.input(JobForm, location="form_and_files", arg_name="form")
@bp.output(Job, status_code=202)
@bp.doc(responses={400: "missing field or not an image", 413: "upload too large", 415: "unsupported format",
                   422: "invalid field, too many pixels, or mask size mismatch", 503: "Redis or storage unavailable"})
def submit(form):
    """Submit a photo and its mask. Answers at once with the queued job."""
    s = services()
    settings = s.settings
    image = _read_upload(form["image"], "image", settings.max_upload_bytes)
    mask = _read_upload(form["mask"], "mask", settings.max_upload_bytes)
    metadata = _parse_metadata(form.get("metadata"), settings.max_metadata_bytes)
    try:
        photo, _ = inspect_pair(image, mask, settings.max_pixels)
    except InpaintError as exc:
        raise Problem(exc.code, str(exc)) from None

    tenant, job_id = current_tenant(), new_job_id()
    job = {
        "id": job_id,
        "tenant": tenant,
        "engine": form.get("engine") or settings.default_engine,
        "priority": form["priority"],
        "metadata": metadata,
        "input": photo.as_input(),
        "webhook_url": form.get("webhook_url") or "",
        "image_key": object_key(tenant, job_id, "image"),
        "mask_key": object_key(tenant, job_id, "mask"),
        "status": QUEUED,
    }
    try:
        s.storage.put(job["image_key"], image, photo.content_type)
        s.storage.put(job["mask_key"], mask, "application/octet-stream")
        s.jobs.create(job)
        created = s.jobs.get(job_id)  # as queued: the worker may start it the moment it is enqueued
        enqueue(s.celery, job_id, job["priority"])
    except Exception:
        # nothing half-accepted: no record, no stored object for a job the client never got
        _discard(job)
        raise
    log.info("job submitted", extra={"job_id": job_id, "tenant": tenant})
    headers = {"Location": url_for("jobs.get_job", job_id=job_id), "Retry-After": str(settings.retry_after_seconds)}
    return _view(created), 202, headers


def _discard(job: dict) -> None:
    s = services()
    for cleanup in (lambda: s.jobs.delete(job), lambda: s.storage.delete(job["image_key"], job["mask_key"])):
        try:
            cleanup()
        except Exception:  # the original error is what the client must see
            log.warning("cleanup after a failed submit failed", exc_info=True)


@bp.get("")
@bp.input(ListQuery, location="query", arg_name="query")
@bp.output(JobList)
def list_jobs(query):
    """This tenant's jobs, newest first, a page at a time."""
    items, cursor = services().jobs.list(
        current_tenant(), query["limit"], query.get("cursor"), query.get("status"), query.get("batch_id")
    )
    return {"items": [_view(j) for j in items], "next_cursor": cursor}


@bp.get("/<job_id>")
@bp.output(Job)
@bp.doc(responses={404: "no such job (or another tenant's)"})
def get_job(job_id):
    """One job."""
    job = _owned_job(job_id)
    headers = {} if job["status"] in ("succeeded", "failed", "canceled") else {
        "Retry-After": str(services().settings.retry_after_seconds)}
    return _view(job), 200, headers


@bp.get("/<job_id>/result")
@bp.doc(responses={200: "the result's bytes (local storage)", 302: "redirect to a short-lived URL (S3)",
                   404: "no such job", 409: "no result (yet)"})
def get_result(job_id):
    """The cleaned photo, once the job has succeeded."""
    s = services()
    job = _owned_job(job_id)
    if job["status"] != SUCCEEDED:
        code = "not_ready" if job["status"] in (QUEUED, RUNNING) else "no_result"
        raise Problem(code, f"job {job_id} is {job['status']}", 409,
                      headers={"Retry-After": str(s.settings.retry_after_seconds)} if code == "not_ready" else None)
    filename = _result_filename(job)
    url = s.storage.result_url(job["result_key"], s.settings.result_url_seconds, filename)
    if url:
        return redirect(url, 302)
    data = s.storage.get(job["result_key"])
    fmt = (job.get("result") or {}).get("format", "")
    mimetype = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(fmt, "application/octet-stream")
    return send_file(io.BytesIO(data), mimetype=mimetype, download_name=filename, max_age=0)


@bp.post("/<job_id>/cancel")
@bp.output(Job)
@bp.doc(responses={404: "no such job", 409: "already finished"})
def cancel(job_id):
    """Cancel a queued job; a running one stops if the worker reaches a safe point first."""
    s = services()
    job = _owned_job(job_id)
    if job["status"] == QUEUED and s.jobs.cancel(job_id).applied:
        s.storage.delete(job["image_key"], job["mask_key"])
    elif job["status"] in (QUEUED, RUNNING):
        s.jobs.request_cancel(job_id)  # the worker checks before it stores a result
    else:
        raise Problem("not_cancelable", f"job {job_id} is already {job['status']}")
    return _view(s.jobs.get(job_id) or job)


@bp.delete("/<job_id>")
@bp.output({}, status_code=204)
@bp.doc(responses={404: "no such job"})
def delete(job_id):
    """Delete the job record and its stored inputs and result."""
    s = services()
    job = _owned_job(job_id)
    s.jobs.delete(job)
    s.storage.delete(*stored_keys(job))
    return ""
