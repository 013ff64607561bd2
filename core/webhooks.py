"""Webhook targets: only public addresses, unless the operator allows private ones.

Checked when a job is submitted and again right before delivery (a name may resolve
elsewhere by then), so a client cannot aim the workers at the metadata service
(169.254.169.254), at localhost, or into the private network.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse

from .errors import WebhookRefused


def check_webhook_url(url: str, allow_private: bool = False) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise WebhookRefused("webhook_url must be an http or https URL with a host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise WebhookRefused(f"webhook host {parsed.hostname!r} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global or address.is_multicast:
            raise WebhookRefused(f"webhook host {parsed.hostname!r} is not a public address ({address})")
