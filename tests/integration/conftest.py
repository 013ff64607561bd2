"""One real stack per storage driver: redis-server, (moto_server), a Celery worker, the API."""

import os

import pytest

from tests.servers import LIMITS, S3_ENV, ServiceStack, make_bucket, start_moto, start_redis


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def redis_server(log_dir):
    server = start_redis(log_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto(log_dir):
    server = start_moto(log_dir)
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def _stack(log_dir, env):
    stack = ServiceStack(log_dir, {**os.environ, **LIMITS, **env})
    stack.start_worker()
    stack.start_webhook_worker()
    stack.start_api()
    return stack


@pytest.fixture(scope="session", params=["local", "s3"])
def stack(request, log_dir, redis_server, tmp_path_factory):
    db = 0 if request.param == "local" else 1  # one Redis, separate queues and records per stack
    env = {"SNEAKY_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/{db}",
           # API and worker count into one folder, as under `sneaky up`: /metrics shows both
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("metrics"))}
    if request.param == "local":
        env["SNEAKY_STORAGE_URL"] = str(tmp_path_factory.mktemp("storage"))
    else:
        endpoint = request.getfixturevalue("moto")
        make_bucket(endpoint, "sneaky-test")
        env.update(S3_ENV, SNEAKY_STORAGE_URL=f"s3://sneaky-test/jobs?endpoint={endpoint}")
    stack = _stack(log_dir, env)
    stack.kind = request.param
    yield stack
    stack.stop()


@pytest.fixture
def lone_env(redis_server, tmp_path):
    """The environment of a stack of a test's own (its Redis database flushed, local storage), for tests
    that stop, kill or starve its processes: ``lone_env(db, SNEAKY_X="...")``."""

    def make(db: int, **settings: str) -> dict:
        url = f"redis://127.0.0.1:{redis_server.port}/{db}"
        import redis

        redis.Redis.from_url(url).flushdb()
        return {**os.environ, **LIMITS, "SNEAKY_REDIS_URL": url, "SNEAKY_STORAGE_URL": str(tmp_path / "storage"),
                **settings}

    return make
