"""Webhooks: where they may go, how they are signed, and each tenant's signing secret.

Signatures follow the Standard Webhooks specification (standardwebhooks.com): every delivery carries
``webhook-id`` (one per event, the same on every retry), ``webhook-timestamp`` (seconds) and
``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` keyed with the
bytes of the tenant's secret, ``whsec_`` and base64. A receiver verifies with any Standard Webhooks
library, or the few lines of ``signature`` below.

Targets: only public addresses, unless the operator allows private ones.

Checked when a job is submitted and again right before delivery, and the delivery connects to the
address this check returned (a name resolved twice may answer differently the second time), so a
client cannot aim the workers at the metadata service (169.254.169.254), at localhost, or into the
private network, also not through an IPv4 address hidden in an IPv6 one (``::ffff:127.0.0.1``,
NAT64 ``64:ff9b::7f00:1``, 6to4 ``2002:7f00:1::``, Teredo).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

import redis

from . import keyspace
from .errors import WebhookRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# IPv6 ranges whose last 32 bits are an IPv4 address: IPv4-compatible, -mapped, -translated, NAT64
_EMBEDS_IPV4 = [ipaddress.ip_network(n) for n in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96",
                                                  "64:ff9b:1::/48")]


@dataclass(frozen=True)
class WebhookTarget:
    host: str
    port: int
    address: str  # the checked address to connect to


def check_webhook_url(url: str, allow_private: bool = False) -> WebhookTarget:
    """The address a delivery may connect to, or WebhookRefused."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise WebhookRefused("webhook_url must be an http or https URL with a host")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        infos = socket.getaddrinfo(parsed.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError):
        raise WebhookRefused(f"webhook host {parsed.hostname!r} does not resolve") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise WebhookRefused(f"webhook host {parsed.hostname!r} is not a public address ({address})")
    return WebhookTarget(parsed.hostname, port, str(addresses[0]))


def is_public(address: IPAddress) -> bool:
    if not address.is_global or address.is_multicast:
        return False
    return all(is_public(inner) for inner in embedded_ipv4(address))


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.sixtofour] if address.sixtofour else []
    if address.teredo:
        found += list(address.teredo)
    if any(address in network for network in _EMBEDS_IPV4):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


# -- signing -----------------------------------------------------------------------------

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, message_id, timestamp, body)}


class WebhookSecrets:
    """One signing secret per tenant, made on first use; rotating replaces it at once."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def get(self, tenant: str) -> str:
        key = keyspace.webhook_secret(tenant)
        self.redis.set(key, new_secret(), nx=True)
        return str(self.redis.get(key).decode())

    def rotate(self, tenant: str) -> str:
        secret = new_secret()
        self.redis.set(keyspace.webhook_secret(tenant), secret)
        return secret
