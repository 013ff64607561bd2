"""The Python SDK: ``SneakyClient(url, api_key)``. Plain HTTP with requests; no torch.

Retries connection errors and 429/503 answers, honouring ``Retry-After``, with
exponential backoff and jitter; every other error raises ``SneakyError`` with the
API's stable code.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

TERMINAL = ("succeeded", "failed", "canceled")
RETRY_STATUSES = (429, 502, 503, 504)


JSON_BATCH_ITEMS = 10_000  # the most items one JSON body may hold; more go as NDJSON


class SneakyError(RuntimeError):
    """An error answer of the API: ``status``, the stable ``code`` and the ``detail``."""

    def __init__(self, status: int, code: str, detail: str, body: dict | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {detail}")
        self.status, self.code, self.detail, self.body = status, code, detail, body or {}

    @classmethod
    def from_response(cls, response: requests.Response) -> SneakyError:
        try:
            body = response.json()
            return cls(response.status_code, body.get("code", "http_error"), body.get("detail", ""), body)
        except ValueError:
            return cls(response.status_code, "http_error", response.text[:200])


@dataclass
class Job:
    id: str
    status: str
    engine: str | None = None
    grow: int = 0
    output: str = "same"
    quality: int | None = None
    priority: str | None = None
    attempts: int = 0
    batch_id: str | None = None
    metadata: dict = field(default_factory=dict)
    input: dict | None = None
    result: dict | None = None
    error: dict | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        known: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass
class Batch:
    id: str
    status: str
    total: int
    counts: dict
    progress: float
    job_ids: list[str] = field(default_factory=list)
    created_at: str | None = None
    finished_at: str | None = None
    grow: int = 0
    output: str = "same"
    quality: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Batch:
        known: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    @property
    def done(self) -> bool:
        return self.status == "done"


Source = str | Path | bytes


def _read(source: Source) -> tuple[str, bytes]:
    if isinstance(source, bytes):
        return "upload", source
    path = Path(source)
    return path.name, path.read_bytes()


class SneakyClient:
    def __init__(self, url: str = "http://127.0.0.1:8000", api_key: str | None = None, timeout: float = 60,
                 retries: int = 6) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    # -- plumbing ---------------------------------------------------------------------

    def request(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.url + path
        kwargs.setdefault("timeout", self.timeout)
        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.ConnectionError:
                if attempt == self.retries:
                    raise
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code not in expect:
                raise SneakyError.from_response(response)
            return response
        raise AssertionError("unreachable")

    @staticmethod
    def _sleep(attempt: int, retry_after: str | None) -> None:
        if retry_after:
            try:
                time.sleep(min(60.0, float(retry_after)))
                return
            except ValueError:
                pass
        time.sleep(min(30.0, 0.25 * 2**attempt) * (0.5 + random.random()))

    # -- jobs -------------------------------------------------------------------------

    def submit(self, image: Source, mask: Source, engine: str | None = None, priority: str = "interactive",
               metadata: dict | None = None, webhook_url: str | None = None, grow: int = 0,
               output: str = "same", quality: int | None = None) -> Job:
        """``grow``: fill the pixels within that many of the mask too (a painted object's edge and shadow).
        ``output``: the result's format, ``same`` (the photo's; a JPEG is patched only where the hole is),
        ``png``, ``jpeg`` or ``webp``; ``quality`` (1–100) for ``jpeg`` and ``webp``."""
        import json

        data: dict[str, Any] = {"priority": priority, "grow": str(grow), "output": output}
        if quality is not None:
            data["quality"] = str(quality)
        if engine:
            data["engine"] = engine
        if metadata is not None:
            data["metadata"] = json.dumps(metadata)
        if webhook_url:
            data["webhook_url"] = webhook_url
        files = {"image": _read(image), "mask": _read(mask)}
        return Job.from_dict(self.request("POST", "/v1/jobs", (202,), files=files, data=data).json())

    def get(self, job_id: str) -> Job:
        return Job.from_dict(self.request("GET", f"/v1/jobs/{job_id}").json())

    def wait(self, job_id: str, timeout: float = 3600) -> Job:
        """Until the job ends: long polls, so the answer comes the moment it does."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            wait = max(0.0, min(10.0, left))
            asked = time.monotonic()
            response = self.request("GET", f"/v1/jobs/{job_id}", params={"wait": wait}, timeout=self.timeout + wait)
            job = Job.from_dict(response.json())
            if job.done:
                return job
            if left <= 0:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout}s")
            if time.monotonic() - asked < wait / 2:  # the API had no wait to spare: poll as it says
                time.sleep(min(left, float(response.headers.get("Retry-After") or 1)))

    def result(self, job_id: str) -> bytes:
        """The cleaned photo's bytes (follows the redirect to storage when there is one)."""
        return self.request("GET", f"/v1/jobs/{job_id}/result").content

    def download(self, job_id: str, path: str | Path) -> int:
        data = self.result(job_id)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(f"{path}.part")
        tmp.write_bytes(data)
        tmp.replace(path)  # a file at `path` is always complete
        return len(data)

    def cancel(self, job_id: str) -> Job:
        return Job.from_dict(self.request("POST", f"/v1/jobs/{job_id}/cancel").json())

    def delete(self, job_id: str) -> None:
        self.request("DELETE", f"/v1/jobs/{job_id}", (204,))

    def jobs(self, status: str | None = None, batch_id: str | None = None, limit: int = 100) -> Iterator[Job]:
        """Every job of this tenant, newest first, page by page."""
        cursor = None
        while True:
            params = {"limit": limit, "status": status, "batch_id": batch_id, "cursor": cursor}
            page = self.request("GET", "/v1/jobs", params={k: v for k, v in params.items() if v}).json()
            yield from (Job.from_dict(j) for j in page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return

    # -- webhooks ---------------------------------------------------------------------

    def webhook_secret(self, rotate: bool = False) -> str:
        """The secret this tenant's webhooks are signed with (``whsec_…``); ``rotate`` replaces it."""
        if rotate:
            return str(self.request("POST", "/v1/webhooks/secret/rotate").json()["secret"])
        return str(self.request("GET", "/v1/webhooks/secret").json()["secret"])

    # -- bulk -------------------------------------------------------------------------

    def upload_urls(self, count: int, content_type: str = "application/octet-stream") -> list[dict]:
        body = {"count": count, "content_type": content_type}
        return self.request("POST", "/v1/uploads", (201,), json=body).json()["uploads"]

    def upload(self, sources: Iterable[Source]) -> list[str]:
        """Upload photos or masks straight to storage; returns their keys, in order."""
        sources = list(sources)
        slots = self.upload_urls(len(sources))
        for slot, source in zip(slots, sources):
            self.put_upload(slot, _read(source)[1])
        return [slot["key"] for slot in slots]

    def put_upload(self, slot: dict, data: bytes) -> None:
        self.request(slot.get("method", "PUT"), slot["url"], (200, 201, 204), data=data,
                     headers=slot.get("headers") or {})

    def batch(self, items: list[dict], mask_key: str | None = None, engine: str | None = None,
              priority: str = "bulk", webhook_url: str | None = None, grow: int = 0,
              idempotency_key: str | None = None, output: str = "same", quality: int | None = None) -> Batch:
        """Many jobs at once from uploaded keys: ``items`` of ``{"image_key", "mask_key"?, "metadata"?}``,
        or one shared ``mask_key``. With ``idempotency_key``, sending it again returns the same batch.
        Up to 10,000 items go as one JSON body, more (up to the API's SNEAKY_MAX_BATCH_ITEMS) as NDJSON
        lines; a batch that large answers without ``job_ids`` (see ``manifest``)."""
        import json

        options: dict[str, Any] = {"priority": priority, "grow": grow, "output": output}
        for name, value in (("mask_key", mask_key), ("engine", engine), ("webhook_url", webhook_url),
                            ("quality", quality)):
            if value:
                options[name] = value
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if len(items) <= JSON_BATCH_ITEMS:
            response = self.request("POST", "/v1/batches", (202,), json={**options, "items": items}, headers=headers)
        else:
            body = b"".join(json.dumps(line).encode() + b"\n" for line in [options, *items])  # resent on a retry
            response = self.request("POST", "/v1/batches", (202,), data=body,
                                    headers={**headers, "Content-Type": "application/x-ndjson"})
        return Batch.from_dict(response.json())

    def get_batch(self, batch_id: str) -> Batch:
        return Batch.from_dict(self.request("GET", f"/v1/batches/{batch_id}").json())

    def manifest(self, batch_id: str) -> list[dict]:
        """Every item of the batch, page after page."""
        items: list[dict] = []
        cursor: int | None = 0
        while cursor is not None:
            page = self.request("GET", f"/v1/batches/{batch_id}/results", params={"cursor": cursor}).json()
            items += page["items"]
            cursor = page.get("next_cursor")
        return items

    def cancel_batch(self, batch_id: str) -> Batch:
        return Batch.from_dict(self.request("POST", f"/v1/batches/{batch_id}/cancel").json())

    def iter_results(self, batch_id: str, interval: float = 1.0, timeout: float = 24 * 3600) -> Iterator[dict]:
        """Yield each manifest item once, as its job finishes."""
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while True:
            items = self.manifest(batch_id)
            for item in items:
                if item["status"] in TERMINAL and item["job_id"] not in seen:
                    seen.add(item["job_id"])
                    yield item
            if len(seen) == len(items):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id}: {len(items) - len(seen)} jobs unfinished after {timeout}s")
            time.sleep(interval)
