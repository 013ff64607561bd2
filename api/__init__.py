"""The HTTP API: a Flask application factory (APIFlask, for validation and the OpenAPI
document) with one blueprint per resource. Imports no torch."""

from __future__ import annotations

import logging

from apiflask import APIFlask

from core import keyspace
from core.settings import Settings

from .context import ApiServices

log = logging.getLogger("sneaky.api")


def create_app(settings: Settings | None = None) -> APIFlask:
    settings = settings or Settings.from_env()
    app = APIFlask("sneaky", title="Sneaky", version="1", spec_path="/openapi.json", docs_path="/docs",
                   static_folder=None)  # type: ignore[arg-type]  # Flask takes None: no /static route
    app.config.update(
        # two files of the per-upload limit plus the form fields; a larger body is refused unread
        MAX_CONTENT_LENGTH=2 * settings.max_upload_bytes + 64 * 1024,
        VALIDATION_ERROR_STATUS_CODE=422,
        JSON_SORT_KEYS=False,
        INFO={"description": "Remove unwanted objects from photos: submit a photo and a mask, poll the job."},
        # Swagger UI's files from this server (api/web.py), not a CDN: /docs works offline
        SWAGGER_UI_BUNDLE_JS="/docs/assets/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS="/docs/assets/swagger-ui-standalone-preset.js",
        SWAGGER_UI_CSS="/docs/assets/swagger-ui.css",
        DOCS_FAVICON="/docs/assets/favicon-32x32.png",
    )
    app.extensions["sneaky"] = ApiServices(settings)  # read through api.context.services()
    # `/v1/jobs//result` (an empty id from a shell variable) is an unknown job, not an HTML redirect to another URL
    app.url_map.merge_slashes = False

    from . import batches, bodies, health, jobs, openapi, problems, tenants, uploads, web, webhooks

    app.before_request(tenants.authenticate)
    app.before_request(bodies.check_json_body)
    app.after_request(bodies.drain_body)
    if settings.rate_limit:
        _rate_limit(app, settings)
    for module in (health, jobs, uploads, batches, webhooks, web):
        app.register_blueprint(module.bp)
    problems.register(app)
    app.spec_processor(openapi.complete)  # type: ignore[arg-type]  # the document arrives as a dict
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
        key_prefix=keyspace.RATE_LIMIT_PREFIX,
        headers_enabled=False,  # it would overwrite our own Retry-After hints on every answer
        swallow_errors=True,  # Redis trouble must not turn every request into an error
    )
