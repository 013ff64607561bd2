"""API keys: each maps to one tenant; only a SHA-256 of the key is stored.

A key is shown once, when created. It is looked up by its hash, so Redis never holds
anything that would let someone use it; its id (the hash's first 12 characters) names it
in listings, logs and ``revoke``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import redis

from . import keyspace
from .jobs import now_rfc3339

TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant: str
    name: str
    created_at: str
    revoked: bool


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, client: redis.Redis, namespace: str = keyspace.NAMESPACE) -> None:
        self.redis = client
        self.ns = namespace

    def _key(self, digest: str) -> str:
        return keyspace.api_key(digest, self.ns)

    def create(self, tenant: str, name: str = "") -> tuple[str, ApiKey]:
        """A new key for ``tenant``: returns the secret (shown once) and its record."""
        if not TENANT_NAME.match(tenant):
            raise ValueError("tenant names are 1-63 lowercase letters, digits, '-' or '_'")
        secret = f"sk_{secrets.token_urlsafe(32)}"
        digest = _digest(secret)
        record = {"tenant": tenant, "name": name, "created_at": now_rfc3339(), "revoked": "0"}
        self.redis.hset(self._key(digest), mapping=record)
        self.redis.sadd(keyspace.api_keys(self.ns), digest)
        return secret, self._record(digest, record)

    def tenant_of(self, secret: str) -> str | None:
        """The tenant a presented key belongs to, or None if unknown or revoked."""
        if not secret or len(secret) > 200:
            return None
        tenant, revoked = self.redis.hmget(self._key(_digest(secret)), "tenant", "revoked")
        if tenant is None or revoked == b"1":
            return None
        return tenant.decode()

    def list(self) -> list[ApiKey]:
        out = []
        for digest in sorted(d.decode() for d in self.redis.smembers(keyspace.api_keys(self.ns))):
            raw = self.redis.hgetall(self._key(digest))
            if raw:
                out.append(self._record(digest, {k.decode(): v.decode() for k, v in raw.items()}))
        return sorted(out, key=lambda k: k.created_at)

    def revoke(self, key_id: str) -> bool:
        matches = [d.decode() for d in self.redis.smembers(keyspace.api_keys(self.ns)) if d.decode().startswith(key_id)]
        if len(key_id) < 8 or len(matches) != 1:
            return False
        self.redis.hset(self._key(matches[0]), "revoked", "1")
        return True

    @staticmethod
    def _record(digest: str, raw: dict) -> ApiKey:
        return ApiKey(digest[:12], raw["tenant"], raw.get("name", ""), raw["created_at"], raw.get("revoked") == "1")
