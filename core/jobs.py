"""Job records in Redis: one hash per job, a per-tenant index, forward-only state.

State only moves forward: queued → running → succeeded | failed | canceled
(a redelivered job may go running → running, counting another attempt). Every
transition is one Lua script, so a late or duplicate message can never move a
job backwards or resurrect a deleted one.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from . import keyspace

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = "queued", "running", "succeeded", "failed", "canceled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED)
TERMINAL = (SUCCEEDED, FAILED, CANCELED)
JSON_FIELDS = ("metadata", "input", "result", "error")

# KEYS[1] job hash; ARGV[1] comma-separated allowed current states, ARGV[2] new state,
# ARGV[3] 1 to count an attempt, then field/value pairs to set. Returns the state before.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return false end
local allowed = ',' .. ARGV[1] .. ','
if not string.find(allowed, ',' .. current .. ',', 1, true) then return current end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', 1) end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return '=' .. current
"""


def new_job_id() -> str:
    """Sortable by creation time (milliseconds, then 80 random bits), so the tenant index can
    list newest first by id alone."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Transition:
    applied: bool
    previous: str | None  # None: the job does not exist (deleted or expired)


class JobStore:
    """All reads and writes of job records go through here."""

    def __init__(self, client: redis.Redis, retention_seconds: int, namespace: str = keyspace.NAMESPACE) -> None:
        self.redis = client
        self.retention = retention_seconds
        self.ns = namespace
        self._transition = client.register_script(_TRANSITION)

    def job_key(self, job_id: str) -> str:
        return keyspace.job(job_id, self.ns)

    def tenant_key(self, tenant: str) -> str:
        return keyspace.tenant_jobs(tenant, self.ns)

    # -- writes -----------------------------------------------------------------------

    def create(self, job: dict, pipe: redis.client.Pipeline | None = None) -> None:
        """Write a new queued job and index it for its tenant, both expiring with the retention
        (into ``pipe`` when given, so a batch writes all its jobs in one round trip)."""
        record = {k: json.dumps(v) if k in JSON_FIELDS else ("" if v is None else str(v)) for k, v in job.items()}
        record.setdefault("status", QUEUED)
        record.setdefault("attempts", "0")
        record.setdefault("created_at", now_rfc3339())
        key, index = self.job_key(job["id"]), self.tenant_key(job["tenant"])
        oldest = f"{int((time.time() - self.retention) * 1000):012x}"
        writer = self.redis.pipeline() if pipe is None else pipe
        writer.hset(key, mapping=record)
        writer.expire(key, self.retention)
        writer.zadd(index, {job["id"]: 0})
        writer.zremrangebylex(index, "-", f"({oldest}")  # entries past retention
        writer.expire(index, self.retention)
        if pipe is None:
            writer.execute()
            writer.reset()

    def transition(self, job_id: str, allowed: tuple[str, ...], new: str, count_attempt: bool = False,
                   **fields: Any) -> Transition:
        args = [",".join(allowed), new, "1" if count_attempt else "0"]
        for name, value in fields.items():
            args += [name, json.dumps(value) if name in JSON_FIELDS else ("" if value is None else str(value))]
        res = self._transition(keys=[self.job_key(job_id)], args=args)
        if res is None:
            return Transition(False, None)
        res = res.decode() if isinstance(res, bytes) else res
        if res.startswith("="):
            return Transition(True, res[1:])
        return Transition(False, res)

    def start(self, job_id: str) -> Transition:
        return self.transition(job_id, (QUEUED, RUNNING), RUNNING, count_attempt=True, started_at=now_rfc3339())

    def succeed(self, job_id: str, result: dict, input_info: dict | None = None) -> Transition:
        fields: dict[str, Any] = {"result": result, "finished_at": now_rfc3339()}
        if input_info is not None:
            fields["input"] = input_info
        return self.transition(job_id, (RUNNING,), SUCCEEDED, **fields)

    def fail(self, job_id: str, code: str, message: str) -> Transition:
        error = {"code": code, "message": message}
        return self.transition(job_id, (QUEUED, RUNNING), FAILED, error=error, finished_at=now_rfc3339())

    def cancel(self, job_id: str, from_states: tuple[str, ...] = (QUEUED,)) -> Transition:
        return self.transition(job_id, from_states, CANCELED, finished_at=now_rfc3339())

    def done_key(self, job_id: str) -> str:
        return keyspace.job_done(job_id, self.ns)

    def signal_done(self, job_id: str) -> None:
        """Wake whoever waits on this job (GET /v1/jobs/{id}?wait=...)."""
        with self.redis.pipeline() as pipe:
            pipe.rpush(self.done_key(job_id), "1")
            pipe.expire(self.done_key(job_id), 60)
            pipe.execute()

    def wait_done(self, blocking: redis.Redis, job_id: str, seconds: float) -> None:
        """Block until the job ends or ``seconds`` pass; ``blocking`` is a client whose socket
        timeout is longer than the wait. The token goes back for any other waiter."""
        if blocking.blpop([self.done_key(job_id)], timeout=seconds):
            self.signal_done(job_id)

    def request_cancel(self, job_id: str) -> None:
        self.redis.hset(self.job_key(job_id), "cancel_requested", "1")

    def delete(self, job: dict) -> None:
        with self.redis.pipeline() as pipe:
            pipe.delete(self.job_key(job["id"]))
            pipe.zrem(self.tenant_key(job["tenant"]), job["id"])
            pipe.execute()

    # -- reads ------------------------------------------------------------------------

    def get(self, job_id: str, tenant: str | None = None) -> dict | None:
        """The record, or None if unknown — or owned by another tenant, which reads the same."""
        if not job_id.isalnum() or len(job_id) > 64:
            return None
        raw = self.redis.hgetall(self.job_key(job_id))
        job = decode(raw)
        if job is None or (tenant is not None and job.get("tenant") != tenant):
            return None
        return job

    def list(self, tenant: str, limit: int, cursor: str | None = None, status: str | None = None,
             batch_id: str | None = None) -> tuple[list[dict], str | None]:
        """Newest first. The cursor is the last id returned; filters scan forward in pages."""
        index = self.tenant_key(tenant)
        items: list[dict] = []
        upper = f"({cursor}" if cursor else "+"
        scanned = 0
        while len(items) < limit and scanned < 50 * limit:
            ids = self.redis.zrevrangebylex(index, upper, "-", start=0, num=limit)
            if not ids:
                return items, None
            scanned += len(ids)
            with self.redis.pipeline() as pipe:
                for job_id in ids:
                    pipe.hgetall(self.job_key(job_id.decode()))
                records = pipe.execute()
            for job_id, raw in zip(ids, records):
                upper = f"({job_id.decode()}"
                job = decode(raw)
                if job is None:
                    self.redis.zrem(index, job_id)  # expired record: drop the stale index entry
                    continue
                if status and job["status"] != status or batch_id and job.get("batch_id") != batch_id:
                    continue
                items.append(job)
                if len(items) == limit:
                    break
        more = self.redis.zrevrangebylex(index, upper, "-", start=0, num=1)
        return items, (upper[1:] if more else None)


def decode(raw: dict) -> dict | None:
    if not raw:
        return None
    job = {k.decode(): v.decode() for k, v in raw.items()}
    if "status" not in job:
        return None
    for name in JSON_FIELDS:
        job[name] = json.loads(job[name]) if job.get(name) else None
    job["attempts"] = int(job.get("attempts") or 0)
    job["grow"] = int(job.get("grow") or 0)
    return job


def public_view(job: dict, result_url: str | None = None) -> dict:
    """The job as the API shows it (README, docs/architecture.md), without storage keys or tenant."""
    result = job.get("result")
    if result is not None and result_url:
        result = {**result, "url": result_url}
    return {
        "id": job["id"],
        "status": job["status"],
        "engine": job.get("engine"),
        "grow": job.get("grow", 0),
        "priority": job.get("priority"),
        "created_at": job.get("created_at") or None,
        "started_at": job.get("started_at") or None,
        "finished_at": job.get("finished_at") or None,
        "attempts": job.get("attempts", 0),
        "batch_id": job.get("batch_id") or None,
        "metadata": job.get("metadata") or {},
        "input": job.get("input"),
        "result": result,
        "error": job.get("error"),
    }


def object_key(tenant: str, job_id: str, name: str) -> str:
    """Storage keys come from server-side ids only, never from anything a client named."""
    return f"{tenant}/{job_id}/{name}"


def stored_keys(job: dict) -> list[str]:
    """The objects that belong to this job alone (a batch's shared mask is not one of them)."""
    names = ("image_key", "result_key") if job.get("mask_shared") == "1" else ("image_key", "mask_key", "result_key")
    return [job[k] for k in names if job.get(k)]


def new_job(tenant: str, image_key: str, mask_key: str, input_info: dict, engine: str, priority: str,
            metadata: dict | None = None, webhook_url: str | None = None, mask_shared: bool = False,
            grow: int = 0) -> dict:
    """A queued job record, as single submissions and batches both create them."""
    return {
        "id": new_job_id(),
        "tenant": tenant,
        "engine": engine,
        "grow": str(grow),
        "priority": priority,
        "metadata": metadata or {},
        "input": input_info,
        "webhook_url": webhook_url or "",
        "image_key": image_key,
        "mask_key": mask_key,
        "mask_shared": "1" if mask_shared else "0",
        "status": QUEUED,
    }
