"""/v1/webhooks: the tenant's signing secret, to verify that a webhook came from this service."""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint

from .context import services
from .schemas import WebhookSecret
from .tenants import current_tenant

bp = APIBlueprint("webhooks", __name__, url_prefix="/v1/webhooks", tag="webhooks")
HOW = ("Verify each delivery as the Standard Webhooks specification says: base64 HMAC-SHA256, keyed with the "
       "secret's bytes after whsec_, of webhook-id.webhook-timestamp.body, equal to a v1, signature.")


@bp.get("/secret")
@bp.output(WebhookSecret)
@bp.doc(description=HOW)
def get_secret() -> dict[str, Any]:
    """The secret this tenant's webhooks are signed with (made on first use)."""
    return {"secret": services().webhook_secrets.get(current_tenant()), "scheme": "standard-webhooks v1"}


@bp.post("/secret/rotate")
@bp.output(WebhookSecret)
def rotate_secret() -> dict[str, Any]:
    """A new secret, in force at once: deliveries from now on are signed with it."""
    return {"secret": services().webhook_secrets.rotate(current_tenant()), "scheme": "standard-webhooks v1"}
