"""The job: a typed record (``Job``, ``JobStatus``) and the one store that reads and writes it.

A job is one Redis hash (``core/keyspace.py``); ``Job.to_record``/``Job.from_record`` are the only
code that knows its field encoding. State moves forward (docs/architecture.md, "The job's states"):
queued → running → succeeded | failed | canceled, a redelivered job going running → running and
counting another attempt; the one way back is a stopping worker's hand-back (running → queued).
Every transition is one Lua script that checks the state (and the caller's attempt) and writes every
field of the change together, so a late or duplicate message can never move a job backwards or
resurrect a deleted one, and a success is never seen without its result.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis

from . import keyspace
from .errors import SneakyError


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def new_job_id() -> str:
    """Sortable by creation time (milliseconds, then 80 random bits), so the tenant index can
    list newest first by id alone."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def valid_id(value: str) -> bool:
    """Job and batch ids as ``new_job_id`` makes them; anything else is unknown without a look-up."""
    return value.isalnum() and len(value) <= 64


@dataclass
class Job:
    id: str
    tenant: str
    engine: str
    priority: str
    input: dict[str, Any]  # the photo as inspected: format, width, height (then hole_ratio)
    image_key: str = ""  # storage keys: server-made, never a client's names
    mask_key: str = ""
    grow: int = 0
    output: str = "same"  # the result's format: same, png, jpeg or webp (pconv/results.py)
    quality: int | None = None  # JPEG or lossy WebP quality, where asked for
    metadata: dict[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None
    batch_id: str | None = None
    status: JobStatus = JobStatus.QUEUED
    attempts: int = 0
    cancel_requested: bool = False
    created_at: str = field(default_factory=now_rfc3339)
    started_at: str | None = None
    finished_at: str | None = None
    result: dict[str, Any] | None = None  # width, height, format
    result_key: str | None = None
    error: dict[str, str] | None = None  # code, message
    webhook: dict[str, Any] | None = None  # the last delivery: attempts, status, error, at

    @classmethod
    def new(cls, tenant: str, engine: str, priority: str, input: dict[str, Any], **optional: Any) -> Job:
        return cls(id=new_job_id(), tenant=tenant, engine=engine, priority=priority, input=input, **optional)

    def object_key(self, name: str) -> str:
        """Where this job's own objects live: under its tenant and id, never a client's names."""
        return f"{self.tenant}/{self.id}/{name}"

    @property
    def stored_keys(self) -> list[str]:
        """The objects that belong to this job alone: those under its own prefix. Uploads it was made
        from are the client's (another job, or a batch's shared mask, may use them too); they go with
        the retention sweep."""
        own = self.object_key("")
        return [k for k in (self.image_key, self.mask_key, self.result_key) if k and k.startswith(own)]

    @property
    def result_filename(self) -> str:
        from .photos import EXTENSIONS  # Pillow comes with it: only when a name is asked for

        return f"{self.id}{EXTENSIONS.get((self.result or {}).get('format', ''), '')}"

    def public_view(self, result_url: str | None = None) -> dict[str, Any]:
        """The job as the API and webhooks show it: no storage keys, no tenant."""
        result = self.result
        if result is not None and result_url:
            result = {**result, "url": result_url}
        return {
            "id": self.id, "status": self.status, "engine": self.engine, "grow": self.grow,
            "output": self.output, "quality": self.quality,
            "priority": self.priority, "created_at": self.created_at or None, "started_at": self.started_at,
            "finished_at": self.finished_at, "attempts": self.attempts, "batch_id": self.batch_id,
            "metadata": self.metadata, "input": self.input or None, "result": result, "error": self.error,
            "webhook": self.webhook,
        }

    # -- the Redis hash: the only code that knows its encoding ---------------------------

    def to_record(self) -> dict[str, str]:
        return {f.name: _encode(f.name, getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_record(cls, raw: Mapping[bytes, bytes]) -> Job | None:
        """The job a hash holds, or None for an empty one (deleted or expired)."""
        record = {k.decode(): v.decode() for k, v in raw.items()}
        if "status" not in record or "id" not in record:
            return None
        values = {f.name: _decode(f.name, record[f.name]) for f in fields(cls) if f.name in record}
        return cls(**values)


_JSON = {"input", "metadata", "result", "error", "webhook"}
_FLAGS = {"cancel_requested"}
_COUNTS = {"grow", "attempts"}


def _encode(name: str, value: Any) -> str:
    if name in _JSON:
        return "" if value is None else json.dumps(value)
    if name in _FLAGS:
        return "1" if value else "0"
    return "" if value is None else str(value)


def _decode(name: str, text: str) -> Any:
    if name in _JSON:
        return json.loads(text) if text else ({} if name in ("input", "metadata") else None)
    if name in _FLAGS:
        return text == "1"
    if name in _COUNTS:
        return int(text or 0)
    if name == "quality":
        return int(text) if text else None
    if name == "output":
        return text or "same"
    if name == "status":
        return JobStatus(text)
    return text or (None if name not in ("id", "tenant", "engine", "priority", "image_key", "mask_key",
                                         "created_at") else "")


# KEYS[1] job hash, KEYS[2] its done list; ARGV[1] comma-separated allowed current states, ARGV[2] new
# state, ARGV[3] what to add to the attempts (1 for a start, -1 for a hand-back, 0 otherwise), ARGV[4] the
# attempt the caller runs ('' = any): a worker whose job was handed to another (its lease expired) can no
# longer move it. Then ARGV[5] the prefix of batch keys: a job of a batch moves its batch's counts
# (``count:{status}``) in the same script, so a batch's summary never reads its jobs. ARGV[6] '1' to have
# the record back (a start reads the job it starts in the same round trip). ARGV[7] '1' to refuse a job
# whose cancel was requested (a success is then not recorded: the worker's last look at the flag, without
# a round trip of its own). Then field/value pairs to set. A job that ends wakes its waiters
# (``wait_done``) in the same script. Returns {'=state:attempt', record} when applied, {'state:attempt'}
# when not, {'!state:attempt'} when refused for a cancel; nothing for a job that does not exist.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return false end
local attempt = redis.call('HGET', KEYS[1], 'attempts') or '0'
local allowed = ',' .. ARGV[1] .. ','
if not string.find(allowed, ',' .. current .. ',', 1, true) then return {current .. ':' .. attempt} end
if ARGV[4] ~= '' and ARGV[4] ~= attempt then return {current .. ':' .. attempt} end
if ARGV[7] == '1' and redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then
  return {'!' .. current .. ':' .. attempt}
end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
if ARGV[3] ~= '0' then attempt = tostring(redis.call('HINCRBY', KEYS[1], 'attempts', tonumber(ARGV[3]))) end
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local batch = redis.call('HGET', KEYS[1], 'batch_id')
if batch and batch ~= '' and redis.call('EXISTS', ARGV[5] .. batch) == 1 then
  redis.call('HINCRBY', ARGV[5] .. batch, 'count:' .. current, -1)
  redis.call('HINCRBY', ARGV[5] .. batch, 'count:' .. ARGV[2], 1)
  local ended = redis.call('HGET', KEYS[1], 'finished_at')
  if ended and ended ~= '' then redis.call('HSET', ARGV[5] .. batch, 'finished_at', ended) end
end
if ARGV[2] == 'succeeded' or ARGV[2] == 'failed' or ARGV[2] == 'canceled' then
  redis.call('RPUSH', KEYS[2], '1')
  redis.call('EXPIRE', KEYS[2], 60)
end
local applied = '=' .. current .. ':' .. attempt
if ARGV[6] == '1' then return {applied, redis.call('HGETALL', KEYS[1])} end
return {applied}
"""
# KEYS[1] job hash, KEYS[2] the tenant's index; ARGV[1] the prefix of batch keys. Deletes the job, and
# counts it as deleted in its batch.
_DELETE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
local batch = redis.call('HGET', KEYS[1], 'batch_id')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if batch and batch ~= '' and redis.call('EXISTS', ARGV[1] .. batch) == 1 then
  redis.call('HINCRBY', ARGV[1] .. batch, 'count:' .. status, -1)
  redis.call('HINCRBY', ARGV[1] .. batch, 'count:deleted', 1)
end
return 1
"""
# KEYS[1] job hash; ARGV field/value pairs. Sets them only on a job that exists (never recreates one).
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""


@dataclass
class Transition:
    applied: bool
    previous: JobStatus | None  # None: the job does not exist (deleted or expired)
    attempt: int = 0  # the job's attempt after the transition (the one a start began)
    job: Job | None = None  # the record after it, where the caller asked (a start)
    cancel_requested: bool = False  # refused because a cancel was requested (``unless_cancel_requested``)


class JobStore:
    """Every read and write of a job record: its state changes, attempts, cancel flag and result."""

    def __init__(self, client: redis.Redis, retention_seconds: int, namespace: str = keyspace.NAMESPACE) -> None:
        self.redis = client
        self.retention = retention_seconds
        self.ns = namespace
        self._transition = client.register_script(_TRANSITION)
        self._update = client.register_script(_UPDATE)
        self._delete = client.register_script(_DELETE)
        self.batch_prefix = keyspace.batch("", namespace)

    def job_key(self, job_id: str) -> str:
        return keyspace.job(job_id, self.ns)

    def tenant_key(self, tenant: str) -> str:
        return keyspace.tenant_jobs(tenant, self.ns)

    def done_key(self, job_id: str) -> str:
        return keyspace.job_done(job_id, self.ns)

    # -- writes -----------------------------------------------------------------------

    def create(self, job: Job, pipe: redis.client.Pipeline | None = None) -> None:
        """Write a new job and index it for its tenant, both expiring with the retention
        (into ``pipe`` when given, so a batch writes all its jobs in one round trip)."""
        key, index = self.job_key(job.id), self.tenant_key(job.tenant)
        oldest = f"{int((time.time() - self.retention) * 1000):012x}"
        writer = self.redis.pipeline() if pipe is None else pipe
        writer.hset(key, mapping=job.to_record())
        writer.expire(key, self.retention)
        writer.zadd(index, {job.id: 0})
        writer.zremrangebylex(index, "-", f"({oldest}")  # entries past retention
        writer.expire(index, self.retention)
        if pipe is None:
            writer.execute()
            writer.reset()

    def _move(self, job_id: str, allowed: Iterable[JobStatus], new: JobStatus, count_attempt: int = 0,
              attempt: int | None = None, read_back: bool = False, unless_cancel_requested: bool = False,
              **changes: Any) -> Transition:
        args = [",".join(allowed), new.value, str(count_attempt), "" if attempt is None else str(attempt),
                self.batch_prefix, "1" if read_back else "", "1" if unless_cancel_requested else ""]
        for name, value in changes.items():
            args += [name, _encode(name, value)]
        answer = self._transition(keys=[self.job_key(job_id), self.done_key(job_id)], args=args)
        if answer is None:
            return Transition(False, None)
        res = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
        state, _, attempts = res.lstrip("=!").partition(":")
        job = None
        if len(answer) > 1:  # HGETALL's flat list of names and values
            flat = answer[1]
            job = Job.from_record(dict(zip(flat[::2], flat[1::2], strict=True)))
        return Transition(res.startswith("="), JobStatus(state), int(attempts or 0), job,
                          cancel_requested=res.startswith("!"))

    def start(self, job_id: str) -> Transition:
        """queued → running, or running → running for a job handed on (its message redelivered, or its
        lease expired): a new attempt, whose number ``attempt`` fences the older one out."""
        return self._move(job_id, ACTIVE, JobStatus.RUNNING, count_attempt=1, read_back=True,
                          started_at=now_rfc3339())

    def hand_back(self, job_id: str, attempt: int) -> Transition:
        """running → queued, the attempt not counted: the one way back, for a worker that stops (a
        drain's grace period ran out) before the job could end. Fenced to the worker's own attempt."""
        return self._move(job_id, (JobStatus.RUNNING,), JobStatus.QUEUED, count_attempt=-1, attempt=attempt)

    def succeed(self, job_id: str, result: dict[str, Any], result_key: str,
                input_info: dict[str, Any] | None = None, attempt: int | None = None) -> Transition:
        """Success and its result (the stored object's key, its size and format) in one write; refused
        (``cancel_requested`` in the answer) for a job whose cancel was requested while it ran."""
        changes: dict[str, Any] = {"result": result, "result_key": result_key, "finished_at": now_rfc3339()}
        if input_info is not None:
            changes["input"] = input_info
        return self._move(job_id, (JobStatus.RUNNING,), JobStatus.SUCCEEDED, attempt=attempt,
                          unless_cancel_requested=True, **changes)

    def fail(self, job_id: str, error: SneakyError, attempt: int | None = None) -> Transition:
        return self._move(job_id, ACTIVE, JobStatus.FAILED, attempt=attempt,
                          error={"code": error.code, "message": error.detail}, finished_at=now_rfc3339())

    def cancel(self, job_id: str, from_states: Iterable[JobStatus] = (JobStatus.QUEUED,),
               attempt: int | None = None) -> Transition:
        return self._move(job_id, from_states, JobStatus.CANCELED, attempt=attempt, finished_at=now_rfc3339())

    def request_cancel(self, job_id: str) -> None:
        """A running job stops at its worker's next safe point (``cancel_requested``)."""
        self.redis.hset(self.job_key(job_id), "cancel_requested", _encode("cancel_requested", True))

    def record_webhook(self, job_id: str, delivery: dict[str, Any]) -> bool:
        """The last webhook delivery's outcome, on a job that still exists (no state change)."""
        return bool(self._update(keys=[self.job_key(job_id)], args=["webhook", _encode("webhook", delivery)]))

    def signal_done(self, job_id: str) -> None:
        """Wake whoever waits on this job (GET /v1/jobs/{id}?wait=...): every transition to an ended state
        does it in its own script; this is for a waiter handing the token on."""
        with self.redis.pipeline() as pipe:
            pipe.rpush(self.done_key(job_id), "1")
            pipe.expire(self.done_key(job_id), 60)
            pipe.execute()

    def delete(self, job: Job) -> None:
        self._delete(keys=[self.job_key(job.id), self.tenant_key(job.tenant)], args=[self.batch_prefix, job.id])

    # -- reads ------------------------------------------------------------------------

    def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job, or None if unknown — or owned by another tenant, which reads the same."""
        if not valid_id(job_id):
            return None
        job = Job.from_record(self.redis.hgetall(self.job_key(job_id)))
        if job is None or (tenant is not None and job.tenant != tenant):
            return None
        return job

    def get_many(self, job_ids: list[str]) -> list[Job | None]:
        """In one round trip, in order; an expired or deleted one reads as None."""
        with self.redis.pipeline() as pipe:
            for job_id in job_ids:
                pipe.hgetall(self.job_key(job_id))
            return [Job.from_record(raw) for raw in pipe.execute()]

    def cancel_requested(self, job_id: str) -> bool:
        return _decode("cancel_requested", (self.redis.hget(self.job_key(job_id), "cancel_requested") or b"").decode())

    def attempts(self, job_ids: list[str]) -> list[int]:
        """How often each job has started (a redelivered message counts again)."""
        with self.redis.pipeline() as pipe:
            for job_id in job_ids:
                pipe.hget(self.job_key(job_id), "attempts")
            return [int(a or 0) for a in pipe.execute()]

    def wait_done(self, blocking: redis.Redis, job_id: str, seconds: float) -> None:
        """Block until the job ends or ``seconds`` pass; ``blocking`` is a client whose socket
        timeout is longer than the wait. The token goes back for any other waiter."""
        if blocking.blpop([self.done_key(job_id)], timeout=seconds):
            self.signal_done(job_id)

    def list(self, tenant: str, limit: int, cursor: str | None = None, status: str | None = None,
             batch_id: str | None = None) -> tuple[list[Job], str | None]:
        """Newest first. The cursor is the last id returned; filters scan forward in pages."""
        index = self.tenant_key(tenant)
        items: list[Job] = []
        upper = f"({cursor}" if cursor else "+"
        scanned = 0
        while len(items) < limit and scanned < 50 * limit:
            ids = [i.decode() for i in self.redis.zrevrangebylex(index, upper, "-", start=0, num=limit)]
            if not ids:
                return items, None
            scanned += len(ids)
            for job_id, job in zip(ids, self.get_many(ids)):
                upper = f"({job_id}"
                if job is None:
                    self.redis.zrem(index, job_id)  # expired record: drop the stale index entry
                    continue
                if status and job.status != status or batch_id and job.batch_id != batch_id:
                    continue
                items.append(job)
                if len(items) == limit:
                    break
        more = self.redis.zrevrangebylex(index, upper, "-", start=0, num=1)
        return items, (upper[1:] if more else None)
