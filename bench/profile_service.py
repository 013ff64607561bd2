"""Where a job's CPU goes: the stack of `sneaky up` (defaults, one worker process) runs 512×512 PNG jobs
with the telea engine one after another while py-spy samples the worker and the API; flame graphs go to
docs/profile/, the frames that cost most and Redis's commands and bytes per job to one table.

    python bench/profile_service.py [--jobs 200] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.flamegraph import read_folded, svg, top_frames  # noqa: E402
from bench.service import cpu_seconds_by_part, inputs, one_job  # noqa: E402
from client.up import free_port, wait_for_port  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# where a job's own work starts in each part; the rest (the servers' loops, Celery's consumer, gunicorn
# reading and writing sockets) is grouped under one frame, its last few frames kept
ANCHORS = {"worker": ("fast_trace_task (",), "api": ("Flask.wsgi_app (",)}
OUTSIDE = {"worker": "celery: consumer, pool, acks", "api": "gunicorn: sockets, parsing, threads"}


def children_by_name(root: int) -> dict[str, int]:
    """The first process under ``root`` whose command line names each part."""
    found: dict[str, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = Path(stat.parent, "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent != root:
            continue
        name = ("redis" if b"redis-server" in cmd else "webhooks" if b"webhooks" in cmd
                else "worker" if b"celery" in cmd else "api" if b"gunicorn" in cmd else "")
        if name:
            found.setdefault(name, int(stat.parent.name))
            if name == "redis":
                # redis-server shows itself as "redis-server 127.0.0.1:PORT"
                found["redis_port"] = int(re.search(rb":(\d+)", cmd)[1])
    return found


def sample(pid: int, out: Path) -> subprocess.Popen:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--rate", "250",
                             "--format", "raw", "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--write")
    p.add_argument("--svg-dir", default=str(ROOT / "docs" / "profile"))
    p.add_argument("--keep-stacks", help="folder to copy py-spy's raw folded stacks into, to read them whole")
    args = p.parse_args(argv)
    work = inputs(args.jobs)
    port, data = free_port(), tempfile.mkdtemp(prefix="sneaky-profile-")
    env = {**os.environ, "SNEAKY_RATE_LIMIT": ""}
    up = subprocess.Popen([str(Path(sys.executable).parent / "sneaky"), "up", "--port", str(port), "--data-dir",
                           data, "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, raw = f"http://127.0.0.1:{port}", Path(data)
    try:
        wait_for_port(port, up, 120)
        session = requests.Session()
        for image, mask, _, _ in work[:5]:  # warm-up: imports, connections, the engine
            one_job(session, url, image, mask)
        parts = children_by_name(up.pid)
        r = redis.Redis(port=parts["redis_port"])
        r.config_resetstat()
        cpu_before = cpu_seconds_by_part(up.pid)
        spies = {name: sample(parts[name], raw / f"{name}.txt") for name in ("worker", "api")}
        failed = sum(not one_job(session, url, image, mask)[1] for image, mask, _, _ in work)
        for spy in spies.values():
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on interrupt
        for spy in spies.values():
            spy.wait(60)
        cpu_after = cpu_seconds_by_part(up.pid)
        commands = r.info("commandstats")
        stats = r.info("stats")
    finally:
        up.terminate()
        up.wait(60)
    n = args.jobs
    cpu = {part: 1000 * (cpu_after.get(part, 0.0) - cpu_before.get(part, 0.0)) / n
           for part in ("worker", "api", "redis")}
    lines = [f"{n} jobs, {failed} failed. CPU per job (user + system, every process of the part): "
             + ", ".join(f"{part} {ms:.1f} ms" for part, ms in cpu.items()) + "."]
    svg_dir = Path(args.svg_dir)
    svg_dir.mkdir(parents=True, exist_ok=True)
    for name in ("worker", "api"):
        if args.keep_stacks:
            Path(args.keep_stacks).mkdir(parents=True, exist_ok=True)
            shutil.copy(raw / f"{name}.txt", Path(args.keep_stacks) / f"{name}.txt")
        stacks = read_folded(raw / f"{name}.txt", ANCHORS[name], OUTSIDE[name])
        (svg_dir / f"{name}.svg").write_text(svg(stacks, f"sneaky {name}: {n} PNG jobs (telea), py-spy samples"))
        lines += ["", f"**{name}** ([flame graph](profile/{name}.svg)), share of its samples while busy:", "",
                  "| frame | inclusive % | self % |", "| --- | ---: | ---: |"]
        lines += [f"| `{frame}` | {inc:.1f} | {own:.1f} |" for frame, inc, own in top_frames(stacks, 24)]
    calls = sorted(((name.removeprefix("cmdstat_"), v["calls"]) for name, v in commands.items()),
                   key=lambda c: -c[1])
    lines += ["", f"**Redis** per job: {sum(c for _, c in calls) / n:.1f} commands, "
              f"{stats['total_net_input_bytes'] / n / 1024:.1f} KiB in, "
              f"{stats['total_net_output_bytes'] / n / 1024:.1f} KiB out "
              "(API, worker and the broker's own traffic together):", "",
              "| command | calls per job |", "| --- | ---: |"]
    lines += [f"| {name} | {count / n:.2f} |" for name, count in calls[:16]]
    text = "\n".join(lines)
    print(text)
    shutil.rmtree(data, ignore_errors=True)
    if args.write:
        write_section(Path(args.write), "where a job's CPU goes", f"{machine_description()}; `sneaky up --workers 1` "
                      "at its defaults (log level INFO); 512×512 PNG photos with a ~5 % stroke, telea; one client, "
                      "each job submitted, long-polled and downloaded.\n\n" + text,
                      "python bench/profile_service.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
