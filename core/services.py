"""What the API processes and the workers share, built once per process from the settings."""

from __future__ import annotations

import redis
from celery import Celery

from .batches import BatchStore
from .fairshare import FairShare
from .jobs import JobStore
from .leases import Leases
from .queue import make_celery
from .settings import Settings
from .storage import open_storage
from .uploads import UploadSlots
from .webhooks import WebhookSecrets
from .window import InteractiveWindow


class Services:
    def __init__(self, settings: Settings, celery: Celery | None = None, socket_timeout: float | None = None) -> None:
        self.settings = settings
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=socket_timeout,
                                          socket_connect_timeout=2)
        self.jobs = JobStore(self.redis, settings.retention_seconds)
        self.batches = BatchStore(self.jobs)
        self.storage = open_storage(settings.storage_url)
        self.celery = celery or make_celery(settings)
        self.uploads = UploadSlots(self.redis)
        self.webhook_secrets = WebhookSecrets(self.redis)
        self.leases = Leases(self.redis, settings.lease_seconds)
        self.fair = FairShare(self.redis, settings.lease_seconds)
        self.window = InteractiveWindow(self.redis, settings.interactive_window_ms, settings.bulk_group_size,
                                        settings.lease_seconds)
