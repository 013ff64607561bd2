"""Delivering a finished job to its webhook_url: signed, to the address that was checked, recorded.

Runs in its own Celery task on its own queue (``worker/tasks.py`` ``deliver_webhook``), taken by a
worker of its own (``celery -A worker.app worker -Q webhooks -P threads``), so a slow receiver never
holds a worker that fills photos. A delivery that fails for a reason a retry may cure (a connection
error, a 5xx, 408 or 429) is retried with backoff by the task; every try is recorded on the job
(``webhook``: attempts, the receiver's status, the error, whether it was delivered).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import certifi
import urllib3

from core import submission
from core.errors import WebhookRefused
from core.jobs import now_rfc3339
from core.services import Services
from core.webhooks import WebhookTarget, check_webhook_url, signed_headers

log = logging.getLogger("sneaky.worker")
TIMEOUT = urllib3.Timeout(connect=3.0, read=5.0)
RETRYABLE_STATUSES = {408, 429}


@dataclass
class Outcome:
    delivered: bool
    retry: bool  # worth another try later


def deliver(services: Services, job_id: str, message_id: str, attempt: int) -> Outcome:
    job = services.jobs.get(job_id)
    if job is None or not job.webhook_url:
        return Outcome(False, False)
    status, error = None, None
    try:  # again right before sending: a name may resolve elsewhere by now; the POST goes to this address
        target = check_webhook_url(job.webhook_url, services.settings.webhook_allow_private == "1")
        body = json.dumps(job.public_view(submission.result_url(services, job, api_base=None)),
                          separators=(",", ":"), allow_nan=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Sneaky-Webhooks/1",
                   "X-Sneaky-Event": "job.finished", "X-Sneaky-Job": job_id,
                   **signed_headers(services.webhook_secrets.get(job.tenant), message_id, int(time.time()), body)}
        status = _post(target, job.webhook_url, body, headers)
        outcome = Outcome(200 <= status < 300, status >= 500 or status in RETRYABLE_STATUSES)
    except WebhookRefused as exc:
        error, outcome = str(exc), Outcome(False, False)
    except urllib3.exceptions.HTTPError as exc:
        error, outcome = type(exc).__name__, Outcome(False, True)
    services.jobs.record_webhook(job_id, {"attempts": attempt, "status": status, "error": error,
                                          "delivered": outcome.delivered, "at": now_rfc3339()})
    if not outcome.delivered:
        log.warning("webhook for job %s: attempt %d %s", job_id, attempt, error or f"answered {status}",
                    extra={"job_id": job_id})
    return outcome


def _post(target: WebhookTarget, url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST to the checked address, naming the host in ``Host`` (and, over TLS, in SNI and the
    certificate check), without following redirects."""
    parsed = urlparse(url)
    path = (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")
    pool: urllib3.HTTPConnectionPool
    if parsed.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(target.address, target.port, timeout=TIMEOUT, retries=False,
                                           server_hostname=target.host, assert_hostname=target.host,
                                           cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=TIMEOUT, retries=False)
    with pool:
        response = pool.urlopen("POST", path, body=body, headers={**headers, "Host": parsed.netloc.rsplit("@")[-1]},
                                redirect=False, assert_same_host=False)
        return int(response.status)
