"""The Celery app both sides share: the API sends job ids, workers consume them.

Only job ids travel through the broker; photos stay in storage and state in the job records. The broker
is Redis (the default: ``SNEAKY_REDIS_URL``) or RabbitMQ (``SNEAKY_BROKER_URL=amqp://…``) with quorum
queues, where a consumer's unacknowledged messages return to the queue the moment its connection
drops (docs/deploy.md, "Which broker"). Job records, idempotency keys and rate limits stay in Redis.
"""

from __future__ import annotations

import redis
from celery import Celery

from .keyspace import QUEUES, WEBHOOK_QUEUE  # the broker's lists are Redis keys too: named there
from .settings import Settings

RUN_JOBS = "sneaky.run_jobs"  # one message: a list of job ids, filled together
DELIVER_WEBHOOK = "sneaky.deliver_webhook"  # one message: a finished job's id
RUN_NEXT_BULK = "sneaky.run_next_bulk"  # one message: a token for the next bulk group (core/fairshare.py)
RUN_WAITING = "sneaky.run_waiting_interactive"  # one message: a token for waiting interactive jobs (core/window.py)


def broker_url(settings: Settings) -> str:
    return settings.broker_url or settings.redis_url


def is_amqp(url: str) -> bool:
    return url.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")


def make_celery(settings: Settings) -> Celery:
    url = broker_url(settings)
    app = Celery("sneaky", broker=url)
    if is_amqp(url):
        # quorum queues: replicated, and a lost consumer's messages come back at once
        transport: dict = {}
        app.conf.update(task_default_queue_type="quorum", task_create_missing_queue_type="quorum",
                        broker_heartbeat=10)
    else:
        # a message must be acked before Redis redelivers it: above the longest group of jobs
        visibility = settings.job_time_limit * settings.bulk_group_size + 60
        transport = {"queue_order_strategy": "priority", "visibility_timeout": visibility}
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # job state lives in our own records, not Celery's backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUES[0],
        task_create_missing_queues=True,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_soft_time_limit=settings.job_time_limit,
        task_time_limit=settings.job_time_limit + 30,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


def enqueue(app: Celery, job_ids: list[str], priority: str, time_limit: int) -> None:
    """One message for a group of jobs; its time limits grow with the group."""
    soft = time_limit * len(job_ids)
    app.send_task(RUN_JOBS, args=[job_ids], queue=priority, soft_time_limit=soft, time_limit=soft + 30)


def enqueue_token(app: Celery, time_limit: int, group_size: int, task: str = RUN_NEXT_BULK,
                  queue: str = "bulk") -> None:
    """One token: whoever takes it runs the next group (bulk: the tenants taking turns; interactive:
    what arrived within the window)."""
    soft = time_limit * group_size
    app.send_task(task, queue=queue, soft_time_limit=soft, time_limit=soft + 30)


def enqueue_webhook(app: Celery, job_id: str) -> None:
    """The event's id is the job's: a receiver that sees it twice knows it is the same event."""
    app.send_task(DELIVER_WEBHOOK, args=[job_id, f"msg_{job_id}"], queue=WEBHOOK_QUEUE)


def queue_depth(app: Celery, redis_client: redis.Redis, queue: str) -> int:
    """Messages waiting in a queue: the list of that name on Redis, the queue's count on RabbitMQ
    (0 for a queue nobody has declared yet)."""
    if not is_amqp(app.conf.broker_url):
        return int(redis_client.llen(queue))
    from amqp.exceptions import NotFound

    with app.pool.acquire(block=True) as connection:  # the producers' pooled connection, a channel of its own
        channel = connection.channel()
        try:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
        except NotFound:  # the broker closed the channel with the answer
            return 0
        finally:
            if channel.is_open:
                channel.close()
