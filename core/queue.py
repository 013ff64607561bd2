"""The Celery app both sides share: the API sends job ids, workers consume them.

Only job ids travel through the broker; photos stay in storage and state in the job records.
"""

from __future__ import annotations

from celery import Celery

from .settings import Settings

RUN_JOB = "sneaky.run_job"
QUEUES = ("interactive", "bulk")  # workers consume in this order


def make_celery(settings: Settings) -> Celery:
    app = Celery("sneaky", broker=settings.redis_url)
    visibility = settings.job_time_limit * 2 + 60  # must exceed the longest job, or Redis redelivers it
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # job state lives in our own records, not Celery's backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="interactive",
        task_create_missing_queues=True,
        broker_transport_options={"queue_order_strategy": "priority", "visibility_timeout": visibility},
        broker_connection_retry_on_startup=True,
        task_soft_time_limit=settings.job_time_limit,
        task_time_limit=settings.job_time_limit + 30,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


def enqueue(app: Celery, job_id: str, priority: str) -> None:
    app.send_task(RUN_JOB, args=[job_id], queue=priority)
