"""Per-tenant rate limit, counted in a real Redis."""

import redis

from api import create_app
from core.keys import KeyStore
from core.settings import Settings


def test_each_tenant_has_its_own_budget(redis_server, tmp_path):
    url = f"redis://127.0.0.1:{redis_server.port}/8"
    redis.Redis.from_url(url).flushdb()
    app = create_app(Settings(redis_url=url, storage_url=str(tmp_path), auth="keys", rate_limit="3 per minute"))
    keys = KeyStore(redis.Redis.from_url(url))
    (a, _), (b, _) = keys.create("a"), keys.create("b")
    client = app.test_client()
    codes = [client.get("/v1/jobs", headers={"Authorization": f"Bearer {a}"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get("/v1/jobs", headers={"Authorization": f"Bearer {a}"})
    assert limited.json["code"] == "rate_limited" and limited.headers["Retry-After"]
    assert limited.mimetype == "application/problem+json"
    assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {b}"}).status_code == 200  # b is untouched
    assert all(client.get("/healthz").status_code == 200 for _ in range(5))  # probes are never limited
