"""The HTTP API: a Flask application factory (APIFlask, for validation and the OpenAPI
document) with one blueprint per resource. Imports no torch."""

from __future__ import annotations

import logging

import redis
from apiflask import APIFlask
from werkzeug.exceptions import HTTPException

from core.batches import BatchStore
from core.jobs import JobStore
from core.keys import KeyStore
from core.queue import make_celery
from core.settings import Settings
from core.storage import StorageUnavailable, open_storage

from .problems import Problem, problem_response, validation_problem

log = logging.getLogger("sneaky.api")


class Services:
    """What a request needs, built once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.jobs = JobStore(self.redis, settings.retention_seconds)
        self.batches = BatchStore(self.jobs)
        self.keys = KeyStore(self.redis)
        self.storage = open_storage(settings.storage_url)
        self.celery = make_celery(settings)


def create_app(settings: Settings | None = None) -> APIFlask:
    settings = settings or Settings.from_env()
    app = APIFlask("sneaky", title="Sneaky", version="1", spec_path="/openapi.json", docs_path="/docs")
    app.config.update(
        # two files of the per-upload limit plus the form fields; a larger body is refused unread
        MAX_CONTENT_LENGTH=2 * settings.max_upload_bytes + 64 * 1024,
        VALIDATION_ERROR_STATUS_CODE=422,
        JSON_SORT_KEYS=False,
        INFO={"description": "Remove unwanted objects from photos: submit a photo and a mask, poll the job."},
    )
    app.extensions["sneaky"] = Services(settings)

    from . import batches, health, jobs, tenants, uploads

    app.before_request(tenants.authenticate)
    if settings.rate_limit:
        _rate_limit(app, settings)
    for module in (health, jobs, uploads, batches):
        app.register_blueprint(module.bp)
    _register_errors(app)
    return app


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
        key_prefix="sneaky-rate",
        headers_enabled=True,
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
        return problem_response(code, error.message or "", error.status_code, error.headers)

    @app.errorhandler(Problem)
    def problem(error: Problem):
        return problem_response(error.code, error.detail, error.status, error.headers, **error.extra)

    @app.errorhandler(redis.RedisError)
    def redis_down(error):
        log.warning("redis unavailable: %s", error)
        return problem_response("queue_unavailable", "the job store is unavailable; retry shortly", 503,
                                {"Retry-After": "5"})

    @app.errorhandler(StorageUnavailable)
    def storage_down(error):
        log.warning("storage unavailable: %s", error)
        return problem_response("storage_unavailable", "storage is unavailable; retry shortly", 503,
                                {"Retry-After": "5"})

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code == 413:
            return problem_response("too_large", "the request body is larger than allowed", 413)
        code = {404: "not_found", 405: "method_not_allowed", 429: "rate_limited"}.get(error.code, "http_error")
        headers = {"Retry-After": "1"} if error.code == 429 else None
        return problem_response(code, str(error.description or ""), error.code or 500, headers)

    @app.errorhandler(Exception)
    def internal(error):
        log.exception("unhandled error")
        return problem_response("internal", "internal error; it has been logged", 500)

