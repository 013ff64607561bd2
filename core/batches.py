"""Batches: many jobs created at once from objects clients uploaded (``core/uploads.py``).

A batch is a hash plus the list of its job ids (in item order); counts and progress are read
from the jobs themselves, so they can never drift from the jobs' own state.
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

    def create(self, tenant: str, jobs: list[Job], settings: dict[str, Any]) -> dict[str, Any]:
        """Write the batch and all its jobs (queued) in one round trip."""
        batch_id = new_job_id()
        batch = {"id": batch_id, "tenant": tenant, "total": len(jobs), "created_at": now_rfc3339(), **settings,
                 **{f"count:{status}": 0 for status in COUNTED}, f"count:{JobStatus.QUEUED}": len(jobs)}
        for job in jobs:
            job.batch_id = batch_id
        with self.redis.pipeline() as pipe:
            for job in jobs:
                self.jobs.create(job, pipe=pipe)
            pipe.hset(self.key(batch_id), mapping={k: str(v) for k, v in batch.items()})
            pipe.rpush(self.jobs_key(batch_id), *[j.id for j in jobs])
            for key in (self.key(batch_id), self.jobs_key(batch_id)):
                pipe.expire(key, self.jobs.retention)
            pipe.execute()
        return batch

    def get(self, batch_id: str, tenant: str) -> dict[str, Any] | None:
        if not valid_id(batch_id):
            return None
        raw = self.redis.hgetall(self.key(batch_id))
        batch = {k.decode(): v.decode() for k, v in raw.items()}
        if not batch or batch.get("tenant") != tenant:
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
        }
