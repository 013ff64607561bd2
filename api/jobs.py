"""/v1/jobs: submit, read, list, download, cancel, delete."""

from __future__ import annotations

import io
import json
import logging

from apiflask import APIBlueprint
from flask import current_app, redirect, request, send_file, url_for
from marshmallow import ValidationError

from core.jobs import QUEUED, RUNNING, SUCCEEDED, TERMINAL, new_job, object_key, public_view, stored_keys
from core.metrics import JOBS_SUBMITTED
from core.photos import EXTENSIONS, inspect_pair
from core.queue import enqueue, queue_depth
from core.webhooks import WebhookRefused, check_webhook_url
from pconv.images import InpaintError, check_mask_size

from .idempotency import idempotent
from .problems import Problem, validation_problem
from .schemas import Job, JobForm, JobFromKeys, JobList, JobQuery, ListQuery
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


def job_result_url(job: dict) -> str | None:
    """A short-lived storage URL (S3), or the API's own result URL (local storage)."""
    if job["status"] != SUCCEEDED or not job.get("result_key"):
        return None
    s = services()
    url = s.storage.result_url(job["result_key"], s.settings.result_url_seconds, _result_filename(job))
    return url or url_for("jobs.get_result", job_id=job["id"], _external=True)


def check_capacity(priority: str, messages: int = 1) -> None:
    """Back-pressure: refuse work the queue cannot take now rather than let it grow without bound."""
    s = services()
    limit = s.settings.max_queued_interactive if priority == "interactive" else s.settings.max_queued_bulk
    depth = queue_depth(s.redis, priority)
    if depth + messages > limit:
        raise Problem("queue_full", f"the {priority} queue holds {depth:,} messages (limit {limit:,}); retry later",
                      429, headers={"Retry-After": "5"})


def check_webhook(url: str | None) -> None:
    if url:
        try:
            check_webhook_url(url, services().settings.webhook_allow_private == "1")
        except WebhookRefused as exc:
            raise Problem(exc.code, str(exc), 422) from None


def _view(job: dict) -> dict:
    return public_view(job, job_result_url(job))


def _result_filename(job: dict) -> str:
    return f"{job['id']}{EXTENSIONS.get((job.get('result') or {}).get('format', ''), '')}"


def _owned_job(job_id: str) -> dict:
    job = services().jobs.get(job_id, current_tenant())
    if job is None:
        raise Problem("not_found", f"no job {job_id}")
    return job


@bp.before_request
def _submit_from_keys():
    """POST /v1/jobs with a JSON body names objects uploaded through /v1/uploads; the
    multipart form is the documented default, so this variant is dispatched here."""
    if request.method == "POST" and request.path.rstrip("/") == "/v1/jobs" and request.is_json:
        try:
            body = JobFromKeys().load(request.get_json(silent=True) or {})
        except ValidationError as exc:
            raise validation_problem({"json": exc.messages}) from None
        return idempotent(submit_from_keys)(body)
    return None


def submit_from_keys(body: dict):
    from .batches import inspect_upload

    s = services()
    tenant = current_tenant()
    _parse_metadata(json.dumps(body["metadata"]) if body.get("metadata") is not None else None,
                    s.settings.max_metadata_bytes)
    check_webhook(body.get("webhook_url"))
    check_capacity(body["priority"])
    try:
        photo, image_key = inspect_upload(s, tenant, body["image_key"], "image", complete=True)
        mask, mask_key = inspect_upload(s, tenant, body["mask_key"], "mask", complete=True)
        check_mask_size((photo.width, photo.height), (mask.width, mask.height))
    except InpaintError as exc:
        raise Problem(exc.code, str(exc), 422 if exc.code in ("invalid_key", "upload_missing") else None) from None
    job = new_job(tenant, image_key, mask_key, photo.as_input(), body.get("engine") or s.settings.default_engine,
                  body["priority"], body.get("metadata"), body.get("webhook_url"), grow=body["grow"])
    return _accept(job)


@bp.post("")
@idempotent
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
    check_webhook(form.get("webhook_url"))
    check_capacity(form["priority"])
    try:
        photo, _ = inspect_pair(image, mask, settings.max_pixels)
    except InpaintError as exc:
        raise Problem(exc.code, str(exc)) from None

    tenant = current_tenant()
    job = new_job(tenant, "", "", photo.as_input(), form.get("engine") or settings.default_engine,
                  form["priority"], metadata, form.get("webhook_url"), grow=form["grow"])
    job_id = job["id"]
    job["image_key"], job["mask_key"] = object_key(tenant, job_id, "image"), object_key(tenant, job_id, "mask")
    try:
        s.storage.put(job["image_key"], image, photo.content_type)
        s.storage.put(job["mask_key"], mask, "application/octet-stream")
    except Exception:
        _discard(job, inputs=True)
        raise
    return _accept(job, inputs_stored_here=True)


def _accept(job: dict, inputs_stored_here: bool = False):
    """Record and enqueue a job whose inputs are stored; on any failure remove the record (and
    the inputs if this request stored them), so the client never has half a job it was not told of."""
    s = services()
    try:
        s.jobs.create(job)
        created = s.jobs.get(job["id"])  # as queued: the worker may start it the moment it is enqueued
        enqueue(s.celery, [job["id"]], job["priority"], s.settings.job_time_limit)
    except Exception:
        _discard(job, inputs=inputs_stored_here)
        raise
    JOBS_SUBMITTED.labels(job["priority"], job["engine"]).inc()
    log.info("job submitted", extra={"job_id": job["id"], "tenant": job["tenant"], "priority": job["priority"],
                                     "engine": job["engine"]})
    headers = {"Location": url_for("jobs.get_job", job_id=job["id"]),
               "Retry-After": str(s.settings.retry_after_seconds)}
    return public_view(created), 202, headers


def _discard(job: dict, inputs: bool) -> None:
    s = services()
    cleanups = [lambda: s.jobs.delete(job)]
    if inputs:
        cleanups.append(lambda: s.storage.delete(job["image_key"], job["mask_key"]))
    for cleanup in cleanups:
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
@bp.input(JobQuery, location="query", arg_name="query")
@bp.output(Job)
@bp.doc(responses={404: "no such job (or another tenant's)"})
def get_job(job_id, query):
    """One job. With ``wait``, the answer comes as soon as the job ends (or when the wait is over)."""
    job = _owned_job(job_id)
    if query["wait"] and job["status"] not in TERMINAL:
        s = services()
        s.jobs.wait_done(s.blocking, job_id, query["wait"])
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
        s.jobs.signal_done(job_id)
        s.storage.delete(*stored_keys(job))
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
