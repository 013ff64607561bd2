"""Direct uploads: slots a client PUTs one file into, then names in a job or a batch.

On S3 a slot is a presigned PUT URL; on local storage it is the API's own ``PUT /v1/uploads/{key}``,
which takes one file per slot: a second PUT is 409 ``upload_used``, so what a job was checked against
cannot be swapped before a worker reads it. (A presigned URL cannot be made single-use; the worker
re-checks what it reads against what the API accepted, ``worker/pipeline.py``.)
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

import redis

from . import keyspace
from .errors import SneakyError

UPLOAD_KEY = re.compile(r"^upl_[0-9a-f]{32}$")
FILLED = "|filled"

# KEYS[1] the slot; ARGV[1] the tenant. Marks an empty slot of this tenant filled.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if not owner then return 'missing' end
if owner == ARGV[1] then
  redis.call('SET', KEYS[1], owner .. '|filled', 'KEEPTTL')
  return 'claimed'
end
if owner == ARGV[1] .. '|filled' then return 'used' end
return 'missing'
"""


def new_upload_key() -> str:
    return f"upl_{secrets.token_hex(16)}"


def upload_object_key(tenant: str, upload_key: str) -> str:
    """Where an upload lives: under its tenant, so one tenant's key never reaches another's object."""
    if not UPLOAD_KEY.match(upload_key):
        raise ValueError(f"not an upload key: {upload_key!r}")
    return f"{tenant}/uploads/{upload_key}"


class UploadSlots:
    """The API-side slots of local storage: issued to a tenant, filled once."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._claim = client.register_script(_CLAIM)

    def issue(self, pipe: redis.client.Pipeline, tenant: str, key: str, seconds: int) -> None:
        pipe.set(keyspace.upload(key), tenant, ex=seconds)

    def fill(self, tenant: str, key: str, write: Callable[[], object]) -> None:
        """Run ``write`` (which stores the file) if the slot is this tenant's and still empty; a
        failed write leaves the slot empty again, for a retry."""
        outcome = self._claim(keys=[keyspace.upload(key)], args=[tenant]) if UPLOAD_KEY.match(key) else b"missing"
        outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
        if outcome == "missing":
            raise SneakyError("unknown or expired upload key", "not_found")
        if outcome == "used":
            raise SneakyError("this upload slot already holds its file; ask POST /v1/uploads for another",
                              "upload_used")
        try:
            write()
        except BaseException:
            self.redis.set(keyspace.upload(key), tenant, keepttl=True)
            raise
