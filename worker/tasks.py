"""The Celery tasks: a group of job ids through the pipeline; a finished job's webhook."""

from __future__ import annotations

import redis
from celery import Task
from celery.exceptions import Reject

from core.jobs import TERMINAL
from core.keyspace import WEBHOOK_QUEUE
from core.queue import DELIVER_WEBHOOK, RUN_JOBS, RUN_NEXT_BULK, RUN_WAITING, enqueue, enqueue_webhook
from core.retry import retrying

from . import engines, pipeline, webhooks
from .app import app, heartbeat, services, settings


@app.task(name=RUN_JOBS, bind=True)
def run_jobs(self: Task, job_ids: list[str]) -> list[str | None]:
    try:
        return _run_jobs(self, job_ids)
    except redis.RedisError as exc:  # the job store away past the retry budget: the message goes back
        raise Reject(f"the job store is unavailable: {exc}", requeue=True) from exc


def _run_jobs(self: Task, job_ids: list[str]) -> list[str | None]:
    s = services()
    if pipeline.should_split(s, job_ids):
        queue = (self.request.delivery_info or {}).get("routing_key") or "bulk"
        for job_id in job_ids:
            enqueue(app, [job_id], queue, settings.job_time_limit)
        return ["split"] * len(job_ids)
    work = pipeline.run(s, job_ids, heartbeat())
    _send_webhooks(work)
    return [w.outcome for w in work]


def _send_webhooks(work: list[pipeline.Work]) -> None:
    for w in work:
        if w.job is not None and w.job.webhook_url and w.outcome in TERMINAL:
            enqueue_webhook(app, w.job_id)


@app.task(name=RUN_NEXT_BULK, bind=True)
def run_next_bulk(self: Task) -> list[str | None]:
    """A token from ``bulk``: the next group of the tenant whose turn it is (core/fairshare.py). Where the
    stages run beside the model (GPU hosts), the groups after it follow in the same task, each read while
    the one before is filled; their own tokens then find nothing, which costs nothing."""
    s = services()

    def take() -> list[str] | None:
        return retrying(s.fair.take, "take the next bulk group")

    try:
        if engines.stage_threads() > 1:
            work = pipeline.run_groups(s, take, heartbeat(), budget_seconds=settings.job_time_limit / 2)
            _send_webhooks(work)
            return [w.outcome for w in work]
        job_ids = take()
    except redis.RedisError as exc:
        raise Reject(f"the job store is unavailable: {exc}", requeue=True) from exc
    return run_jobs(job_ids) if job_ids else []


@app.task(name=RUN_WAITING, bind=True)
def run_waiting_interactive(self: Task) -> list[str | None]:
    """A token from ``interactive`` with a window on: the jobs waiting, and those arriving within it."""
    try:
        job_ids = retrying(services().window.take, "take the waiting interactive jobs")
    except redis.RedisError as exc:
        raise Reject(f"the job store is unavailable: {exc}", requeue=True) from exc
    return run_jobs(job_ids) if job_ids else []


@app.task(name=DELIVER_WEBHOOK, bind=True)
def deliver_webhook(self: Task, job_id: str, message_id: str) -> bool:
    attempt = self.request.retries + 1
    outcome = webhooks.deliver(services(), job_id, message_id, attempt)
    if outcome.retry and attempt < settings.webhook_attempts:
        delay = settings.webhook_retry_seconds * 4 ** (attempt - 1)
        raise self.retry(countdown=delay, max_retries=settings.webhook_attempts - 1, queue=WEBHOOK_QUEUE)
    return outcome.delivered
