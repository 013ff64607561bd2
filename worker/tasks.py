"""The Celery task: one message, a group of job ids, run through the pipeline; then their webhooks."""

from __future__ import annotations

from celery import Task

from core.jobs import TERMINAL
from core.queue import RUN_JOBS, enqueue

from . import pipeline, webhooks
from .app import app, services, settings


@app.task(name=RUN_JOBS, bind=True)
def run_jobs(self: Task, job_ids: list[str]) -> list[str | None]:
    s = services()
    if pipeline.should_split(s, job_ids):
        queue = (self.request.delivery_info or {}).get("routing_key") or "bulk"
        for job_id in job_ids:
            enqueue(app, [job_id], queue, settings.job_time_limit)
        return ["split"] * len(job_ids)
    work = pipeline.run(s, job_ids)
    for w in work:
        if w.job is not None and w.job.webhook_url and w.outcome in TERMINAL:
            webhooks.notify(s, w.job_id)
    return [w.outcome for w in work]
