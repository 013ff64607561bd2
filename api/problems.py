"""Every error answer as an RFC 9457 problem document: one renderer, one set of handlers.

The code and its status come from ``core.errors.ERRORS``. Flask's and APIFlask's own errors
(routing, body size, schema validation, rate limits) are turned into the same family first, and
anything else goes through ``core.errors.translate`` (Redis down → 503 ``queue_unavailable``, a
bug → 500 ``internal``, logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from apiflask import APIFlask
from apiflask.exceptions import HTTPError
from flask import Response, current_app, jsonify, request
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from core.errors import SneakyError, translate
from core.metrics import REDIS_ERRORS, STORAGE_ERRORS

log = logging.getLogger("sneaky.api")
PROBLEM_TYPE = "https://sneaky.dev/problems/"
# what Flask, werkzeug and APIFlask raise, by HTTP status, in our codes
CODE_OF_HTTP_STATUS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large",
                       415: "unsupported_media_type", 429: "rate_limited"}
# a dependency down: counted, logged with its cause, answered without the endpoint's details
UNAVAILABLE = {"queue_unavailable": (REDIS_ERRORS, "the job store is unavailable; retry shortly"),
               "storage_unavailable": (STORAGE_ERRORS, "storage is unavailable; retry shortly")}


def problem_response(error: SneakyError) -> Response:
    status = error.status
    response = jsonify({"type": PROBLEM_TYPE + error.code, "title": HTTPStatus(status).phrase, "status": status,
                        "detail": error.detail, "code": error.code, **error.extra})
    response.status_code = status
    response.mimetype = "application/problem+json"
    response.headers.update(error.headers)
    return response


def validation_problem(detail: Mapping[str, Any]) -> SneakyError:
    """A schema's field errors ({location: {field: messages}}) as one problem: missing fields are
    400 ``missing_field``, anything else 422 ``invalid_field``; ``fields`` lists them all."""
    fields = {name: msgs for where in detail.values() for name, msgs in where.items()}
    missing = [n for n, msgs in fields.items() if any("Missing data" in m for m in _flat(msgs))]
    if missing:
        return SneakyError(f"missing: {', '.join(sorted(missing))}", "missing_field", fields=fields)
    summary = "; ".join(f"{n}: {' '.join(_flat(m))}" for n, m in fields.items())
    return SneakyError(summary, "invalid_field", fields=fields)


def from_http(status: int, description: str, headers: Mapping[str, str] | None = None) -> SneakyError:
    """A framework error (a route not found, a body too large, a rate limit) in our family."""
    code = CODE_OF_HTTP_STATUS.get(status, "bad_request" if status < 500 else "internal")
    extra_headers = dict(headers or {})
    if code == "method_not_allowed":
        extra_headers["Allow"] = ", ".join(sorted(current_app.url_map.bind_to_environ(request.environ)
                                                  .allowed_methods()))
    if code == "rate_limited":
        extra_headers["Retry-After"] = "1"
    if code == "too_large":
        description = "the request body is larger than allowed"
    return SneakyError(description, code, headers=extra_headers)


def register(app: APIFlask) -> None:
    @app.error_processor
    def apiflask_error(error: HTTPError) -> Response:  # schema validation and APIFlask's abort()
        if error.status_code in (400, 422) and isinstance(error.detail, dict) and error.detail:
            return render(validation_problem(error.detail))
        return render(from_http(error.status_code, error.message or "", dict(Headers(error.headers).items())))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return render(from_http(error.code or 500, str(error.description or "")))

    @app.errorhandler(Exception)
    def any_error(error: Exception) -> Response:
        return render(translate(error), error)


def render(error: SneakyError, cause: BaseException | None = None) -> Response:
    if error.code in UNAVAILABLE:
        counter, detail = UNAVAILABLE[error.code]
        counter.labels("api").inc()
        log.warning("%s: %s", error.code, cause or error)
        error = SneakyError(detail, error.code, headers=error.headers)
    elif error.code == "internal":
        log.error("unhandled error", exc_info=cause or error)
        error = SneakyError("internal error; it has been logged", "internal")
    return problem_response(error)


def _flat(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, dict):
        return [m for v in messages.values() for m in _flat(v)]
    return [m for v in messages for m in _flat(v)]
