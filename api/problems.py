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
