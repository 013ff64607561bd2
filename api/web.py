"""The web page at ``/``: one HTML file, a script and a stylesheet, no build step. It uses the
public API like any client. And the API browser's files (Swagger UI at ``/docs``), served from the
``swagger-ui-bundle`` package rather than a CDN, so the docs work offline and behind a strict proxy."""

from apiflask import APIBlueprint
from flask import Response, send_from_directory

from .context import services

bp = APIBlueprint("web", __name__, static_folder="static", static_url_path="/static", enable_openapi=False)


@bp.get("/")
def index() -> Response:
    response = send_from_directory(str(bp.static_folder), "index.html", max_age=0)
    # everything comes from this origin (and, with S3, results from the storage's presigned URLs)
    storage = getattr(services().storage, "download_origins", "")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; img-src 'self' blob: data:; connect-src 'self' {storage}; style-src 'self'; "
        "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return response


DOCS_ASSETS = "/docs/assets"


@bp.get(f"{DOCS_ASSETS}/<path:name>")
def docs_asset(name: str) -> Response:
    from swagger_ui_bundle import swagger_ui_path

    return send_from_directory(str(swagger_ui_path), name, max_age=86400)
