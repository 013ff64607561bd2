"""Batches: many jobs created at once from objects clients uploaded (``core/uploads.py``).

A batch is a hash plus the list of its job ids (in item order). It is filled a part at a time
(``open``, ``add``, ``seal``), so a batch of 100,000 items is never held whole in memory, and no one
sees it, nor can any of its jobs run, until it is sealed. Its counts by status are kept by every job
transition (``core/jobs.py``), so its summary reads one hash whatever its size.
"""

from __future__ import annotations

from typing import Any

from . import keyspace
from .jobs import Job, JobStatus, JobStore, new_job_id, now_rfc3339, valid_id

COUNTED = (*JobStatus, "deleted")


class BatchStore:
    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs
        self.redis = jobs.redis

    def key(self, batch_id: str) -> str:
        return keyspace.batch(batch_id, self.jobs.ns)

    def jobs_key(self, batch_id: str) -> str:
        return keyspace.batch_jobs(batch_id, self.jobs.ns)

    def open(self, tenant: str, settings: dict[str, Any]) -> dict[str, Any]:
        """A new batch, still being filled (``add``): nobody sees it until it is ``seal``ed."""
        batch = {"id": new_job_id(), "tenant": tenant, "total": 0, "created_at": now_rfc3339(), "accepting": "1",
                 **settings, **{f"count:{status}": 0 for status in COUNTED}}
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key(batch["id"]), mapping={k: str(v) for k, v in batch.items()})
            pipe.expire(self.key(batch["id"]), self.jobs.retention)
            pipe.execute()
        return batch

    def add(self, batch: dict[str, Any], jobs: list[Job]) -> None:
        """Write a part of the batch's jobs (queued, not yet sent to any queue) in one round trip."""
        if not jobs:
            return
        with self.redis.pipeline() as pipe:
            for job in jobs:
                job.batch_id = batch["id"]
                self.jobs.create(job, pipe=pipe)
            pipe.rpush(self.jobs_key(batch["id"]), *[j.id for j in jobs])
            pipe.expire(self.jobs_key(batch["id"]), self.jobs.retention)
            pipe.hincrby(self.key(batch["id"]), f"count:{JobStatus.QUEUED}", len(jobs))
            pipe.execute()
        batch["total"] += len(jobs)
        batch[f"count:{JobStatus.QUEUED}"] = int(batch[f"count:{JobStatus.QUEUED}"]) + len(jobs)

    def seal(self, batch: dict[str, Any]) -> None:
        """Every job is in: the batch is visible, with its total."""
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key(batch["id"]), "total", str(batch["total"]))
            pipe.hdel(self.key(batch["id"]), "accepting")
            pipe.execute()
        batch.pop("accepting", None)

    def discard(self, batch: dict[str, Any], page: int = 1000) -> None:
        """A batch refused while being filled: its jobs and keys go, a page of jobs at a time."""
        for start in range(0, batch["total"], page):
            with self.redis.pipeline() as pipe:
                for job_id in self.job_ids(batch["id"], start, page):
                    pipe.delete(self.jobs.job_key(job_id))
                    pipe.zrem(self.jobs.tenant_key(batch["tenant"]), job_id)
                pipe.execute()
        self.redis.delete(self.key(batch["id"]), self.jobs_key(batch["id"]))

    def get(self, batch_id: str, tenant: str) -> dict[str, Any] | None:
        if not valid_id(batch_id):
            return None
        raw = self.redis.hgetall(self.key(batch_id))
        batch = {k.decode(): v.decode() for k, v in raw.items()}
        if not batch or batch.get("tenant") != tenant or batch.get("accepting"):
            return None
        batch["total"] = int(batch["total"])
        return batch

    def job_ids(self, batch_id: str, start: int = 0, count: int | None = None) -> list[str]:
        end = -1 if count is None else start + count - 1
        return [j.decode() for j in self.redis.lrange(self.jobs_key(batch_id), start, end)]

    def jobs_of(self, batch_id: str, start: int = 0, count: int | None = None) -> list[tuple[str, Job | None]]:
        """The batch's job ids in item order (from item ``start``, ``count`` of them), each with its
        job (None once expired or deleted)."""
        ids = self.job_ids(batch_id, start, count)
        return list(zip(ids, self.jobs.get_many(ids)))

    def summary(self, batch: dict[str, Any]) -> dict[str, Any]:
        """From the batch's own counts, which every job transition keeps (core/jobs.py): constant time,
        whatever the batch's size. A deleted job counts as ended."""
        counts = {s.value: int(batch.get(f"count:{s.value}") or 0) for s in JobStatus}
        deleted = int(batch.get("count:deleted") or 0)
        if deleted:
            counts["deleted"] = deleted
        finished = sum(counts[s] for s in JobStatus if s.finished) + deleted
        done = finished >= batch["total"]
        return {
            "id": batch["id"],
            "status": "done" if done else "running",
            "total": batch["total"],
            "counts": counts,
            "progress": round(finished / batch["total"], 4) if batch["total"] else 1.0,
            "created_at": batch["created_at"],
            "finished_at": batch.get("finished_at") if done else None,
            "priority": batch.get("priority"),
            "engine": batch.get("engine"),
            "grow": int(batch.get("grow") or 0),
            "output": batch.get("output") or "same",
            "quality": int(batch["quality"]) if batch.get("quality") else None,
        }
