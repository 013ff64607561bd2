"""What a request handler reaches for: the process's services."""

from __future__ import annotations

import redis
from flask import current_app

from core.keys import KeyStore
from core.services import Services
from core.settings import Settings

from .waits import WaitSlots

MAX_WAIT = 20  # seconds a GET /v1/jobs/{id}?wait= may hold a request


class ApiServices(Services):
    """What a request needs, built once per process: the shared services, API keys, and a Redis
    client for long polls (GET /v1/jobs/{id}?wait=), whose reads may block up to MAX_WAIT seconds."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, socket_timeout=5)
        self.blocking = redis.Redis.from_url(settings.redis_url, socket_timeout=MAX_WAIT + 5,
                                             socket_connect_timeout=2)
        self.keys = KeyStore(self.redis)
        self.waits = WaitSlots(settings.max_waits)


def services() -> ApiServices:
    return current_app.extensions["sneaky"]
