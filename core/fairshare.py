"""Fair share of the bulk queue between tenants: one tenant's million photos must not hold back
another tenant's ten.

Bulk groups (SNEAKY_BULK_GROUP_SIZE job ids each) wait in a list per tenant; the broker's ``bulk`` queue
carries interchangeable tokens, one per group. A worker that takes a token takes the next group
round-robin across the tenants that have any (one Lua script: the rotation, the pop, and the jobs'
leases together, so a worker that dies right after cannot strand the group: the lease reaper hands it
on). Interactive work does not pass through here: it is taken first anyway.
"""

from __future__ import annotations

import json
import time

import redis

from . import keyspace

# KEYS[1] the rotation (a list of tenants with groups waiting), KEYS[2] the leases; ARGV[1] the prefix of
# the tenants' lists, ARGV[2] the leases' expiry. Returns the next group (JSON) or false.
_TAKE = """
for i = 1, redis.call('LLEN', KEYS[1]) do
  local tenant = redis.call('LMOVE', KEYS[1], KEYS[1], 'LEFT', 'RIGHT')
  if not tenant then return false end
  local group = redis.call('LPOP', ARGV[1] .. tenant)
  if redis.call('LLEN', ARGV[1] .. tenant) == 0 then redis.call('LREM', KEYS[1], 0, tenant) end
  if group then
    for _, job_id in ipairs(cjson.decode(group)) do redis.call('ZADD', KEYS[2], ARGV[2], job_id) end
    return group
  end
end
return false
"""
# KEYS[1] the rotation, KEYS[2] the tenant's list; ARGV[1] the tenant, then the groups (JSON).
_PUT = """
for i = 2, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
if not redis.call('LPOS', KEYS[1], ARGV[1]) then redis.call('RPUSH', KEYS[1], ARGV[1]) end
return 1
"""


class FairShare:
    def __init__(self, client: redis.Redis, lease_seconds: float, namespace: str = keyspace.NAMESPACE) -> None:
        self.redis = client
        self.lease_seconds = lease_seconds
        self.ns = namespace
        self._take = client.register_script(_TAKE)
        self._put = client.register_script(_PUT)

    def put(self, tenant: str, groups: list[list[str]]) -> None:
        keys = [keyspace.fair_rotation(self.ns), keyspace.fair_groups(tenant, self.ns)]
        self._put(keys=keys, args=[tenant, *(json.dumps(group) for group in groups)])

    def take(self) -> list[str] | None:
        """The next tenant's next group, its jobs' leases held; None when no group waits."""
        keys = [keyspace.fair_rotation(self.ns), keyspace.leases(self.ns)]
        group = self._take(keys=keys, args=[keyspace.fair_groups("", self.ns), time.time() + self.lease_seconds])
        return json.loads(group) if group else None

    def withdraw(self, tenant: str, groups: list[list[str]]) -> list[list[str]]:
        """Take back those of ``groups`` still waiting (their tokens could not be sent); returns them."""
        key = keyspace.fair_groups(tenant, self.ns)
        with self.redis.pipeline() as pipe:
            for group in groups:
                pipe.lrem(key, 1, json.dumps(group))
            removed = pipe.execute()
        return [group for group, count in zip(groups, removed) if count]

    def waiting(self, tenant: str) -> int:
        return int(self.redis.llen(keyspace.fair_groups(tenant, self.ns)))
