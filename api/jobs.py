"""/v1/jobs: submit (a multipart form, or JSON naming uploaded keys), read, list, download, cancel, delete.

Validation happens here, at the edge (``api/schemas.py``); what a job is and how it is accepted is
``core/jobs.py`` and ``core/submission.py``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import wraps
from typing import Any

from apiflask import APIBlueprint
from flask import redirect, request, send_file, url_for
from marshmallow import ValidationError
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from core import submission
from core.errors import SneakyError
from core.jobs import Job, JobStatus
from core.photos import ACCEPTED_FORMATS, check_same_size, inspect_pair

from . import schemas
from .context import services
from .idempotency import idempotent
from .problems import validation_problem
from .schemas import JobForm, JobFromKeys, JobList, JobQuery, ListQuery
from .tenants import current_tenant

bp = APIBlueprint("jobs", __name__, url_prefix="/v1/jobs", tag="jobs")
View = tuple[dict[str, Any], int, dict[str, str]]


def view(job: Job) -> dict[str, Any]:
    """The job as clients see it, with its result link."""
    return job.public_view(submission.result_url(services(), job, request.host_url))


def owned_job(job_id: str) -> Job:
    job = services().jobs.get(job_id, current_tenant())
    if job is None:
        raise SneakyError(f"no job {job_id}", "not_found")
    return job


def accepted(job: Job) -> View:
    headers = {"Location": url_for("jobs.get_job", job_id=job.id),
               "Retry-After": str(services().settings.retry_after_seconds)}
    return view(job), 202, headers


def or_json(schema: type[JobFromKeys], json_view: Callable[[dict[str, Any]], View]) -> Callable[..., Any]:
    """A JSON body goes to ``json_view``, validated by ``schema``; anything else to the form view.
    (APIFlask takes one body schema per route; the OpenAPI document lists both, ``api/openapi.py``.)"""

    def decorate(form_view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(form_view)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            if not request.is_json:
                return form_view(*args, **kwargs)
            try:
                body = schema().load(request.get_json(silent=True) or {})
            except ValidationError as exc:
                raise validation_problem({"json": exc.messages}) from None
            return json_view(body)

        return dispatch

    return decorate


def _read_upload(field: FileStorage, name: str, limit: int) -> bytes:
    data = field.read(limit + 1)
    if len(data) > limit:
        raise SneakyError(f"the {name} is larger than {limit:,} bytes", "too_large")
    return data


def submit_from_keys(body: dict[str, Any]) -> View:
    """POST /v1/jobs with JSON: the photo and mask were uploaded through /v1/uploads."""
    s, tenant = services(), current_tenant()
    metadata = submission.check_metadata(s, body.get("metadata"))
    submission.check_webhook(s, body.get("webhook_url"))
    submission.check_capacity(s, body["priority"])
    photo, image_key = submission.inspect_upload(s, tenant, body["image_key"], "image", complete=True)
    mask, mask_key = submission.inspect_upload(s, tenant, body["mask_key"], "mask", complete=True)
    check_same_size(photo, mask)
    submission.check_output(body, photo)
    job = Job.new(tenant, body.get("engine") or s.settings.default_engine, body["priority"], photo.as_input(),
                  image_key=image_key, mask_key=mask_key, metadata=metadata, webhook_url=body.get("webhook_url"),
                  grow=body["grow"], output=body["output"], quality=body.get("quality"))
    return accepted(submission.submit(s, job))


@bp.post("")
@idempotent
@or_json(JobFromKeys, submit_from_keys)
@bp.input(JobForm, location="form_and_files", arg_name="form")
@bp.output(schemas.Job, status_code=202)
@bp.doc(responses={400: "missing field or not an image", 413: "upload too large", 415: "unsupported format",
                   422: "invalid field, too many pixels, or mask size mismatch", 503: "Redis or storage unavailable"})
def submit(form: dict[str, Any]) -> View:
    """Submit a photo and its mask: a multipart form with both files, or JSON naming two keys from
    ``POST /v1/uploads``. Answers at once with the queued job."""
    s = services()
    limit = s.settings.max_upload_bytes
    image, mask = _read_upload(form["image"], "image", limit), _read_upload(form["mask"], "mask", limit)
    metadata = submission.check_metadata(s, form.get("metadata"))
    submission.check_webhook(s, form.get("webhook_url"))
    submission.check_capacity(s, form["priority"])
    photo, _ = inspect_pair(image, mask, s.settings.max_pixels)
    submission.check_output(form, photo)
    job = Job.new(current_tenant(), form.get("engine") or s.settings.default_engine, form["priority"],
                  photo.as_input(), metadata=metadata, webhook_url=form.get("webhook_url"), grow=form["grow"],
                  output=form["output"], quality=form.get("quality"))
    submission.store_inputs(s, job, image, mask, photo.content_type)
    return accepted(submission.submit(s, job, inputs_stored_here=True))


@bp.get("")
@bp.input(ListQuery, location="query", arg_name="query")
@bp.output(JobList)
def list_jobs(query: dict[str, Any]) -> dict[str, Any]:
    """This tenant's jobs, newest first, a page at a time."""
    items, cursor = services().jobs.list(
        current_tenant(), query["limit"], query.get("cursor"), query.get("status"), query.get("batch_id")
    )
    return {"items": [view(j) for j in items], "next_cursor": cursor}


@bp.get("/<job_id>")
@bp.input(JobQuery, location="query", arg_name="query")
@bp.output(schemas.Job)
@bp.doc(responses={404: "no such job (or another tenant's)"})
def get_job(job_id: str, query: dict[str, Any]) -> View:
    """One job. With ``wait``, the answer comes as soon as the job ends (or when the wait is over)."""
    job = owned_job(job_id)
    if query["wait"] and not job.status.finished:
        s = services()
        with s.waits.slot(job.tenant) as granted:
            if granted:  # else: answer now, as an ordinary poll (api/waits.py)
                s.jobs.wait_done(s.blocking, job_id, query["wait"])
                job = owned_job(job_id)
    headers = {} if job.status.finished else {"Retry-After": str(services().settings.retry_after_seconds)}
    return view(job), 200, headers


@bp.get("/<job_id>/result")
@bp.doc(responses={200: "the result's bytes (local storage)", 302: "redirect to a short-lived URL (S3)",
                   404: "no such job", 409: "no result (yet)"})
def get_result(job_id: str) -> Response:
    """The cleaned photo, once the job has succeeded."""
    s = services()
    job = owned_job(job_id)
    if job.status != JobStatus.SUCCEEDED or not job.result_key:
        if job.status.finished:
            raise SneakyError(f"job {job_id} is {job.status}", "no_result")
        raise SneakyError(f"job {job_id} is {job.status}", "not_ready",
                          headers={"Retry-After": str(s.settings.retry_after_seconds)})
    url = s.storage.result_url(job.result_key, s.settings.result_url_seconds, job.result_filename)
    if url:
        return redirect(url, 302)
    data = s.storage.get(job.result_key)
    mimetype = ACCEPTED_FORMATS.get((job.result or {}).get("format", ""), "application/octet-stream")
    return send_file(io.BytesIO(data), mimetype=mimetype, download_name=job.result_filename, max_age=0)


@bp.post("/<job_id>/cancel")
@bp.output(schemas.Job)
@bp.doc(responses={404: "no such job", 409: "already finished"})
def cancel(job_id: str) -> dict[str, Any]:
    """Cancel a queued job; a running one stops if the worker reaches a safe point first."""
    s = services()
    job = owned_job(job_id)
    if not submission.cancel(s, job):
        raise SneakyError(f"job {job_id} is already {job.status}", "not_cancelable")
    return view(s.jobs.get(job_id) or job)


@bp.delete("/<job_id>")
@bp.output({}, status_code=204)
@bp.doc(responses={404: "no such job"})
def delete(job_id: str) -> str:
    """Delete the job record and its stored inputs and result."""
    submission.delete(services(), owned_job(job_id))
    return ""
