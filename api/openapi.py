"""The OpenAPI document, completed where APIFlask cannot say it all: every error is problem+json,
the errors any route may answer, the result download's types, the JSON variant of ``POST /v1/jobs``
(APIFlask documents one body schema per route; the multipart form is that one) and the NDJSON variant
of ``POST /v1/batches``."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from core.errors import ERRORS

from .schemas import JobFromKeys

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": sorted(ERRORS), "description": "stable error code (README: Errors)"},
    },
}
# errors any /v1 operation may answer, besides its own
COMMON_ERRORS = {"400": "bad request", "401": "missing or invalid API key", "413": "body too large",
                 "422": "invalid field", "429": "rate limited or queue full", "503": "Redis or storage unavailable"}
RESULT_TYPES = ("image/jpeg", "image/png", "image/webp")


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    """Every error answer is application/problem+json (RFC 9457): say so in the document."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["JobFromKeys"] = schema_of(JobFromKeys)
    submit = spec.get("paths", {}).get("/v1/jobs", {}).get("post")
    if submit is not None:
        submit.setdefault("requestBody", {"content": {}})["content"]["application/json"] = {
            "schema": {"$ref": "#/components/schemas/JobFromKeys"}}
    create_batch = spec.get("paths", {}).get("/v1/batches", {}).get("post")
    if create_batch is not None:
        create_batch.setdefault("requestBody", {"content": {}})["content"]["application/x-ndjson"] = {
            "schema": {"type": "string", "description": "a batch of up to SNEAKY_MAX_BATCH_ITEMS items: the first "
                       "line a JSON object of the batch's settings (BatchRequest without items), then one BatchItem "
                       "object per line"}}
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


def schema_of(schema: type) -> dict[str, Any]:
    """A marshmallow schema as an OpenAPI component, rendered the way APIFlask renders its own."""
    spec = APISpec("sneaky", "1", "3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.schema(schema.__name__, schema=schema)
    return spec.to_dict()["components"]["schemas"][schema.__name__]
