"""The HTTP API: a Flask application factory (APIFlask, for validation and the OpenAPI
document) with one blueprint per resource. Imports no torch."""

from __future__ import annotations

import logging

import redis
from apiflask import APIFlask
from werkzeug.exceptions import HTTPException

from core import keyspace
from core.batches import BatchStore
from core.jobs import JobStore
from core.keys import KeyStore
from core.metrics import REDIS_ERRORS, STORAGE_ERRORS
from core.queue import make_celery
from core.settings import Settings
from core.storage import StorageUnavailable, open_storage

from .problems import Problem, problem_response, validation_problem

log = logging.getLogger("sneaky.api")
MAX_WAIT = 20  # seconds a GET /v1/jobs/{id}?wait= may hold a request


class Services:
    """What a request needs, built once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        # for long polls (GET /v1/jobs/{id}?wait=): reads may block up to MAX_WAIT seconds
        self.blocking = redis.Redis.from_url(settings.redis_url, socket_timeout=MAX_WAIT + 5,
                                             socket_connect_timeout=2)
        self.jobs = JobStore(self.redis, settings.retention_seconds)
        self.batches = BatchStore(self.jobs)
        self.keys = KeyStore(self.redis)
        self.storage = open_storage(settings.storage_url)
        self.celery = make_celery(settings)


def create_app(settings: Settings | None = None) -> APIFlask:
    settings = settings or Settings.from_env()
    app = APIFlask("sneaky", title="Sneaky", version="1", spec_path="/openapi.json", docs_path="/docs",
                   static_folder=None)
    app.config.update(
        # two files of the per-upload limit plus the form fields; a larger body is refused unread
        MAX_CONTENT_LENGTH=2 * settings.max_upload_bytes + 64 * 1024,
        VALIDATION_ERROR_STATUS_CODE=422,
        JSON_SORT_KEYS=False,
        INFO={"description": "Remove unwanted objects from photos: submit a photo and a mask, poll the job."},
    )
    app.extensions["sneaky"] = Services(settings)

    from . import batches, health, jobs, tenants, uploads, web

    app.before_request(tenants.authenticate)
    if settings.rate_limit:
        _rate_limit(app, settings)
    for module in (health, jobs, uploads, batches, web):
        app.register_blueprint(module.bp)
    _register_errors(app)
    app.spec_processor(document_problems)
    return app


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable error code (README: Errors)"},
    },
}
# errors any /v1 operation may answer, besides its own
COMMON_ERRORS = {"400": "bad request", "401": "missing or invalid API key", "413": "body too large",
                 "422": "invalid field", "429": "rate limited or queue full", "503": "Redis or storage unavailable"}
RESULT_TYPES = ("image/jpeg", "image/png", "image/webp")


def document_problems(spec: dict) -> dict:
    """Every error answer is application/problem+json (RFC 9457): say so in the document."""
    spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in spec.get("paths", {}).items():
        for _method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if path.startswith("/v1/"):
                for status, description in COMMON_ERRORS.items():
                    responses.setdefault(status, {"description": description})
                if "{" in path:
                    responses.setdefault("404", {"description": "not found"})
            for status, response in responses.items():
                if str(status)[0] in "45":
                    response["content"] = problem
            if path == "/v1/jobs/{job_id}/result":
                responses["200"] = {"description": "the result's bytes (local storage)",
                                    "content": {t: {"schema": {"type": "string", "format": "binary"}}
                                                for t in RESULT_TYPES}}
                responses.setdefault("302", {"description": "redirect to a short-lived storage URL"})
            if path == "/v1/batches/{batch_id}/results" and "200" in responses:
                responses["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    return spec


def _allowed_methods() -> str:
    """The Allow header a 405 must carry (RFC 9110)."""
    from flask import current_app, request

    methods = current_app.url_map.bind_to_environ(request.environ).allowed_methods()
    return ", ".join(sorted(methods))


def _rate_limit(app: APIFlask, settings: Settings) -> None:
    """Per tenant (after authentication), across every /v1 route, counted in Redis so all API
    processes share one count."""
    from flask import g, request
    from flask_limiter import Limiter

    Limiter(
        key_func=lambda: f"tenant:{g.get('tenant') or request.remote_addr}",
        app=app,
        application_limits=[settings.rate_limit],
        application_limits_exempt_when=lambda: not request.path.startswith("/v1/"),
        storage_uri=settings.redis_url,
        key_prefix=keyspace.RATE_LIMIT_PREFIX,
        headers_enabled=False,  # it would overwrite our own Retry-After hints on every answer
        swallow_errors=True,  # Redis trouble must not turn every request into an error
    )


def _register_errors(app: APIFlask) -> None:
    @app.error_processor
    def apiflask_error(error):
        # validation errors and abort()s from APIFlask
        if error.status_code in (400, 422) and isinstance(error.detail, dict) and error.detail:
            problem = validation_problem(error.detail)
            return problem_response(problem.code, problem.detail, problem.status, **problem.extra)
        if error.status_code == 413:
            return problem_response("too_large", "the request body is larger than allowed", 413)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = _allowed_methods()
        return problem_response(code, error.message or "", error.status_code, headers)

    @app.errorhandler(Problem)
    def problem(error: Problem):
        return problem_response(error.code, error.detail, error.status, error.headers, **error.extra)

    @app.errorhandler(redis.RedisError)
    def redis_down(error):
        REDIS_ERRORS.labels("api").inc()
        log.warning("redis unavailable: %s", error)
        return problem_response("queue_unavailable", "the job store is unavailable; retry shortly", 503,
                                {"Retry-After": "5"})

    @app.errorhandler(StorageUnavailable)
    def storage_down(error):
        STORAGE_ERRORS.labels("api").inc()
        log.warning("storage unavailable: %s", error)
        return problem_response("storage_unavailable", "storage is unavailable; retry shortly", 503,
                                {"Retry-After": "5"})

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code == 413:
            return problem_response("too_large", "the request body is larger than allowed", 413)
        code = {404: "not_found", 405: "method_not_allowed", 429: "rate_limited"}.get(error.code, "http_error")
        headers = {"Allow": _allowed_methods()} if error.code == 405 else {}
        if error.code == 429:
            headers["Retry-After"] = "1"
        return problem_response(code, str(error.description or ""), error.code or 500, headers)

    @app.errorhandler(Exception)
    def internal(error):
        log.exception("unhandled error")
        return problem_response("internal", "internal error; it has been logged", 500)

