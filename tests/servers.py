"""Real servers for integration tests: redis-server, moto_server (S3 over HTTP), Celery
workers and the API under gunicorn, each on a free port, each stoppable and restartable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import redis

from client.up import find_redis_server, free_port, wait_for_port

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    log: Path
    port: int | None = None
    url: str = ""
    also: Callable[[], None] | None = None  # what else stop() must end (processes outside our session)

    def stop(self, timeout: float = 20) -> None:
        import signal

        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        if self.also is not None:
            self.also()

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def spawn(name: str, args: list[str], log_dir: Path, env: dict | None = None, port: int | None = None,
          timeout: float = 60, host: str = "127.0.0.1") -> Server:
    log = log_dir / f"{name}.log"
    out = log.open("ab")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env or os.environ.copy(),
                            cwd=ROOT, start_new_session=True)
    server = Server(name, proc, log, port)
    if port is not None:
        try:
            wait_for_port(port, proc, timeout, host)
        except RuntimeError as exc:
            server.stop()
            raise RuntimeError(f"{name} did not start: {exc}\n{server.tail()}") from None
    return server


def start_redis(log_dir: Path, port: int | None = None) -> Server:
    port = port or free_port()
    data = log_dir / f"redis-{port}"
    data.mkdir(exist_ok=True)
    return spawn(f"redis-{port}", [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1",
                                   "--dir", str(data), "--save", "", "--appendonly", "yes"], log_dir, port=port)


def start_rabbitmq(log_dir: Path) -> Server:
    """A RabbitMQ node of its own (Debian's rabbitmq-server, which runs as the rabbitmq user): its own
    ports, data in a folder of its own, output in ``log_dir``; amqp://guest:guest@127.0.0.1:PORT//."""
    port, dist = free_port(), free_port()
    env = rabbitmq_env(port, dist)
    server = spawn(f"rabbitmq-{port}", ["rabbitmq-server"], log_dir, env=env, port=port, timeout=120)
    server.url = f"amqp://guest:guest@127.0.0.1:{port}//"
    server.also = lambda: kill_by_env("RABBITMQ_NODENAME", env["RABBITMQ_NODENAME"])
    return server


def rabbitmq_env(port: int, dist: int) -> dict:
    """The environment of a RabbitMQ node with its own name, ports, data and logs."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix=f"sneaky-rabbitmq-{port}-"))  # the rabbitmq user must reach it
    base.chmod(0o755)
    (base / "mnesia").mkdir(parents=True)
    (base / "log").mkdir()
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq.conf").write_text("loopback_users = none\n")  # guest from other hosts (the cluster test)
    shutil.chown(base, "rabbitmq", "rabbitmq")
    for path in base.rglob("*"):
        shutil.chown(path, "rabbitmq", "rabbitmq")
    env = {**os.environ, "HOME": str(base), "RABBITMQ_NODENAME": f"sneaky{port}@localhost",
           "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_DIST_PORT": str(dist),
           "RABBITMQ_MNESIA_BASE": str(base / "mnesia"), "RABBITMQ_LOG_BASE": str(base / "log"),
           "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
           "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins"), "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
           "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced"), "RABBITMQ_CONF_ENV_FILE": str(base / "env"),
           "RABBITMQ_FEATURE_FLAGS_FILE": str(base / "feature_flags")}
    return env


def kill_by_env(name: str, value: str) -> None:
    """Processes that left our session (rabbitmq-server switches user and session): found by a variable
    of their environment."""
    import signal

    needle = f"{name}={value}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes().split(b"\0"):
                os.kill(int(environ.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def start_moto(log_dir: Path) -> Server:
    port = free_port()
    exe = shutil.which("moto_server", path=str(BIN)) or "moto_server"
    return spawn("moto", [exe, "-H", "127.0.0.1", "-p", str(port)], log_dir, port=port)


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def make_bucket(endpoint: str, bucket: str) -> None:
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket=bucket)


@dataclass
class ServiceStack:
    """API and workers against one Redis and one storage URL."""

    log_dir: Path
    env: dict
    servers: list[Server] = field(default_factory=list)
    api_url: str = ""

    def start_worker(self, name: str = "worker", concurrency: int = 1) -> Server:
        args = [str(BIN / "celery"), "-A", "worker.app", "worker", "-Q", "interactive,bulk", "-c", str(concurrency),
                "--loglevel", "INFO", "-n", f"{name}-{free_port()}@%h", "--without-gossip", "--without-mingle"]
        server = spawn(name, args, self.log_dir, self.env)
        self.servers.append(server)
        return server

    def start_webhook_worker(self, name: str = "webhooks") -> Server:
        """Webhook deliveries, as deployments run them: their own queue, a thread pool."""
        args = [str(BIN / "celery"), "-A", "worker.app", "worker", "-Q", "webhooks", "-P", "threads", "-c", "4",
                "--loglevel", "INFO", "-n", f"{name}-{free_port()}@%h", "--without-gossip", "--without-mingle"]
        server = spawn(name, args, self.log_dir, self.env)
        self.servers.append(server)
        return server

    def start_api(self, workers: int = 1, port: int | None = None) -> Server:
        """``port``: the one an API of this stack had before (a restarted server), else a free one."""
        port = port or free_port()
        args = [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", str(workers), "--threads", "16",
                "api.wsgi:app"]
        server = spawn("api", args, self.log_dir, self.env, port=port)
        self.servers.append(server)
        self.api_url = f"http://127.0.0.1:{port}"
        return server

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.env["SNEAKY_REDIS_URL"])

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {s.name}\n{s.tail()}" for s in self.servers)


# small limits so the limit tests stay cheap
LIMITS = {"SNEAKY_MAX_UPLOAD_BYTES": str(3 * 1024 * 1024), "SNEAKY_MAX_PIXELS": str(40_000_000),
          "SNEAKY_AUTH": "open", "SNEAKY_WEBHOOK_ALLOW_PRIVATE": "1",
          "SNEAKY_WEBHOOK_RETRY_SECONDS": "1", "SNEAKY_RATE_LIMIT": "1000 per second",
          # telea: fast and exact; pconv jobs name their engine (and `sneaky up` uses it);
          # tenant isolation has its own keyed stack (test_tenants.py)
          "SNEAKY_DEFAULT_ENGINE": "telea"}
