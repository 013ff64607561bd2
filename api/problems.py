"""Errors as RFC 9457 problem documents, each with a stable ``code``."""

from __future__ import annotations

from http import HTTPStatus

from flask import jsonify

PROBLEM_TYPE = "https://sneaky.dev/problems/"

# stable code → HTTP status, for errors raised by domain code
STATUS_OF_CODE = {
    "invalid_image": 400,
    "unsupported_format": 415,
    "too_many_pixels": 422,
    "mask_size_mismatch": 422,
    "too_large": 413,
    "invalid_metadata": 422,
    "metadata_too_large": 422,
    "missing_field": 400,
    "invalid_field": 422,
    "invalid_items": 422,
    "invalid_webhook": 422,
    "idempotency_mismatch": 422,
    "idempotency_in_progress": 409,
    "queue_full": 429,
    "invalid_key": 422,
    "upload_missing": 422,
    "unauthorized": 401,
    "not_found": 404,
    "not_ready": 409,
    "not_cancelable": 409,
    "storage_unavailable": 503,
    "queue_unavailable": 503,
    "method_not_allowed": 405,
    "internal": 500,
}


class Problem(Exception):
    def __init__(self, code: str, detail: str, status: int | None = None, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status or STATUS_OF_CODE.get(code, 400)
        self.headers = headers or {}
        self.extra = extra


def problem_response(code: str, detail: str, status: int, headers: dict | None = None, **extra):
    body = {
        "type": PROBLEM_TYPE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation_problem(detail: dict) -> Problem:
    """A schema's field errors ({location: {field: messages}}) as one problem: missing fields are
    400 ``missing_field``, anything else 422 ``invalid_field``; ``fields`` lists them all."""
    fields = {name: msgs for where in detail.values() for name, msgs in where.items()}
    missing = [n for n, msgs in fields.items() if any("Missing data" in m for m in _flat(msgs))]
    if missing:
        return Problem("missing_field", f"missing: {', '.join(sorted(missing))}", 400, fields=fields)
    summary = "; ".join(f"{n}: {' '.join(_flat(m))}" for n, m in fields.items())
    return Problem("invalid_field", summary, 422, fields=fields)


def _flat(messages) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, dict):
        return [m for v in messages.values() for m in _flat(v)]
    return [m for v in messages for m in _flat(v)]
