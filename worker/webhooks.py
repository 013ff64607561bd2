"""Telling a client its job ended: POST the job as the API shows it to its webhook_url.

Sent after the pipeline has stored and recorded the group, never inside it, and never failing
the job: a few tries with backoff, then a warning in the log.
"""

from __future__ import annotations

import logging
import time

import requests

from core import submission
from core.errors import WebhookRefused
from core.services import Services
from core.webhooks import check_webhook_url

log = logging.getLogger("sneaky.worker")
ATTEMPTS = 3


def notify(services: Services, job_id: str) -> bool:
    """True once the receiver answered 2xx."""
    job = services.jobs.get(job_id)
    if job is None or not job.webhook_url:
        return False
    try:  # again right before sending: a name may resolve elsewhere by now
        check_webhook_url(job.webhook_url, services.settings.webhook_allow_private == "1")
    except WebhookRefused as exc:
        log.warning("webhook for job %s not sent: %s", job_id, exc)
        return False
    body = job.public_view(submission.result_url(services, job, api_base=None))
    for attempt in range(ATTEMPTS):
        try:
            response = requests.post(job.webhook_url, json=body, timeout=5, allow_redirects=False,
                                     headers={"X-Sneaky-Event": "job.finished", "X-Sneaky-Job": job_id})
            if response.status_code < 300:
                return True
            log.warning("webhook for job %s answered %d", job_id, response.status_code)
        except requests.RequestException as exc:
            log.warning("webhook for job %s failed: %s", job_id, type(exc).__name__)
        time.sleep(0.5 * 2**attempt)
    return False
