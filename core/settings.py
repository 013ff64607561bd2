"""Settings from ``SNEAKY_*`` environment variables; every one is documented in the README."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

PREFIX = "SNEAKY_"


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    broker_url: str = ""  # the queue: empty = Redis at redis_url; amqp://… = RabbitMQ (quorum queues)
    auth: str = "keys"  # "keys": every request needs an API key; "open": no keys, one tenant (loopback only)
    storage_url: str = "./.sneaky/storage"  # a folder, or s3://bucket/prefix?endpoint=...&region=...
    default_engine: str = "pconv"
    weights: str = ""  # a PConv safetensors file; empty = the shipped weights
    worker_threads: int = 0  # CPU threads per worker process; 0 = the cores this worker may use / its processes
    cpu_runtime: str = "auto"  # the network on CPU: auto (OpenVINO where installed), torch, openvino, openvino-f32
    flip_average: int = 1  # 1: PConv fills each photo and its mirror and averages them (better, ~2x the compute)
    max_upload_bytes: int = 100 * 1024 * 1024
    max_pixels: int = 150_000_000
    max_metadata_bytes: int = 4096
    max_json_bytes: int = 8 * 1024 * 1024  # a JSON body (a batch of 10,000 items), checked before it is parsed
    retention_seconds: int = 7 * 24 * 3600
    result_url_seconds: int = 900  # lifetime of presigned result URLs
    job_time_limit: int = 600  # seconds a job may run before it is stopped
    max_queued_interactive: int = 10_000  # messages waiting; above it submissions get 429
    max_queued_bulk: int = 100_000  # (a bulk message carries up to bulk_group_size jobs)
    interactive_window_ms: int = 0  # >0: interactive jobs arriving this close together share a forward pass (GPU)
    max_batch_items: int = 100_000  # items of one batch sent as NDJSON (a JSON body holds up to 10,000)
    bulk_group_size: int = 8  # batch jobs per worker message: their crops share forward passes
    stop_grace_seconds: int = 600  # SIGTERM: the job in hand may finish this long, then it is handed back
    lease_seconds: int = 30  # a running job's lease: a worker gone this long hands its jobs back (at most 60)
    max_attempts: int = 3  # a job started more often than this (it keeps killing workers) ends "poisoned"
    max_waits: int = 12  # long polls (GET /v1/jobs/{id}?wait=) held at once per API process; more answer at once
    retry_after_seconds: int = 1  # Retry-After on 202, a hint for polling
    rate_limit: str = "100 per second"  # per tenant, all /v1 routes together; empty = none
    webhook_attempts: int = 5  # deliveries of one webhook before it is given up
    webhook_retry_seconds: int = 5  # first retry after this; each next one waits 4× longer
    webhook_allow_private: str = ""  # "1": webhooks may target loopback and private networks (tests, labs)
    public_url: str = ""  # base URL the API is reached at, for upload links; empty = the request's

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = int(raw) if f.type == "int" else raw
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        if not 5 <= self.lease_seconds <= 60:
            raise ValueError(f"SNEAKY_LEASE_SECONDS must be 5 to 60, not {self.lease_seconds}")
        if self.auth not in ("keys", "open"):
            raise ValueError(f"SNEAKY_AUTH must be 'keys' or 'open', not {self.auth!r}")
