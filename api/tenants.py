"""Who is asking: every /v1 request carries ``Authorization: Bearer <key>``, and the key's tenant
scopes everything it touches. With ``SNEAKY_AUTH=open`` (what ``sneaky up`` sets on 127.0.0.1)
there are no keys and every request belongs to the tenant ``default``."""

from __future__ import annotations

from flask import g, request

from core.errors import SneakyError

from .context import services

OPEN_TENANT = "default"


def authenticate() -> None:
    """Runs before every request; only the versioned API needs a key."""
    if not request.path.startswith("/v1/"):
        return
    s = services()
    if s.settings.auth == "open":
        g.tenant = OPEN_TENANT
        return
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    tenant = s.keys.tenant_of(secret.strip()) if scheme.lower() == "bearer" else None
    if tenant is None:
        raise SneakyError("a valid API key is required: Authorization: Bearer <key>", "unauthorized",
                          headers={"WWW-Authenticate": 'Bearer realm="sneaky"'})
    g.tenant = tenant


def current_tenant() -> str:
    return g.tenant
