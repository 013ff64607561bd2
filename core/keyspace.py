r"""Every Redis key Sneaky uses, in one place: its name, type, owner and lifetime.

| key | type | owner (writes it) | lifetime |
| --- | --- | --- | --- |
| `sneaky:job:{job_id}` | hash: the job record (core.jobs) | core.jobs.JobStore | SNEAKY_RETENTION_SECONDS |
| `sneaky:tenant:{tenant}:jobs` | sorted set: the tenant's job ids, by creation | core.jobs.JobStore | retention |
| `sneaky:done:{job_id}` | list: one item when the job ends, wakes long polls | core.jobs.JobStore | 60 s |
| `sneaky:batch:{batch_id}` | hash: settings, total, counts; `accepting` | core.batches.BatchStore | retention |
| `sneaky:batch:{batch_id}:jobs` | list: the batch's job ids, in item order | core.batches.BatchStore | retention |
| `sneaky:apikey:{sha256}` | hash: an API key's tenant, name, state | core.keys.KeyStore | until revoked and removed |
| `sneaky:apikeys` | set: the sha256 of every key | core.keys.KeyStore | forever |
| `sneaky:idem:{tenant}:{sha256}` | string: an Idempotency-Key's request and answer | api.idempotency | 24 h |
| `sneaky:upload:{upload_key}` | string: a local upload's tenant (`{tenant}\|filled` once used) | core.uploads | 1 h |
| `sneaky-rate/…` | flask-limiter's counters (`RATE_LIMIT_PREFIX`) | flask-limiter | its windows |
| `sneaky:fair:tenants` | list: tenants with bulk groups waiting, in turn | core.fairshare | while any wait |
| `sneaky:fair:{tenant}` | list: the tenant's bulk groups (JSON job ids), oldest first | core.fairshare | until taken |
| `sneaky:window:interactive` | list: interactive job ids waiting for a window (when on) | core.window | until taken |
| `sneaky:leases` | sorted set: running jobs' ids, scored by lease expiry | core.leases.Leases | forever |
| `sneaky:whsec:{tenant}` | string: the tenant's webhook signing secret (`whsec_…`) | core.webhooks | until rotated |
| `interactive`, `bulk`, `webhooks` (`QUEUES`, `WEBHOOK_QUEUE`), `unacked*`, `_kombu.*` | broker lists | kombu | read |

Secrets are never keys: API keys and Idempotency-Keys appear only as SHA-256 digests. Webhook secrets are
stored as values (signing needs them), readable only through the tenant's own key.
"""

from __future__ import annotations

NAMESPACE = "sneaky"
RATE_LIMIT_PREFIX = "sneaky-rate"
QUEUES = ("interactive", "bulk")  # the broker's lists, one per priority; workers consume in this order
WEBHOOK_QUEUE = "webhooks"  # deliveries, taken by their own worker (a slow receiver must not hold a GPU)


def job(job_id: str, ns: str = NAMESPACE) -> str:
    return f"{ns}:job:{job_id}"


def tenant_jobs(tenant: str, ns: str = NAMESPACE) -> str:
    return f"{ns}:tenant:{tenant}:jobs"


def job_done(job_id: str, ns: str = NAMESPACE) -> str:
    return f"{ns}:done:{job_id}"


def batch(batch_id: str, ns: str = NAMESPACE) -> str:
    return f"{ns}:batch:{batch_id}"


def batch_jobs(batch_id: str, ns: str = NAMESPACE) -> str:
    return f"{ns}:batch:{batch_id}:jobs"


def api_key(digest: str, ns: str = NAMESPACE) -> str:
    return f"{ns}:apikey:{digest}"


def api_keys(ns: str = NAMESPACE) -> str:
    return f"{ns}:apikeys"


def idempotency(tenant: str, digest: str, ns: str = NAMESPACE) -> str:
    return f"{ns}:idem:{tenant}:{digest}"


def upload(upload_key: str, ns: str = NAMESPACE) -> str:
    return f"{ns}:upload:{upload_key}"


def fair_rotation(ns: str = NAMESPACE) -> str:
    return f"{ns}:fair:tenants"


def fair_groups(tenant: str, ns: str = NAMESPACE) -> str:
    return f"{ns}:fair:{tenant}"


def interactive_waiting(ns: str = NAMESPACE) -> str:
    return f"{ns}:window:interactive"


def leases(ns: str = NAMESPACE) -> str:
    return f"{ns}:leases"


def webhook_secret(tenant: str, ns: str = NAMESPACE) -> str:
    return f"{ns}:whsec:{tenant}"
