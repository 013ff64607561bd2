"""Hosts on one machine: a network namespace each, joined by veth pairs to one bridge, with no route
anywhere else. The test (in the root namespace, on the bridge) reaches them by address; a host's link
can be cut and healed, and every process of a host killed at once, as a preempted node's are."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import Server, spawn

BRIDGE, SUBNET = "snkbr0", "10.77.0"


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    return subprocess.run([*prefix, "ip", *args], capture_output=True, text=True, check=check)


@dataclass
class Host:
    name: str
    address: str
    servers: list[Server] = field(default_factory=list)

    @property
    def ns(self) -> str:
        return f"snk-{self.name}"

    @property
    def link(self) -> str:  # the bridge's end of its cable
        return f"snk-{self.name}-br"

    def start(self, name: str, args: list[str], log_dir: Path, env: dict, port: int | None = None,
              timeout: float = 60) -> Server:
        server = spawn(f"{self.name}-{name}", ["ip", "netns", "exec", self.ns, *args], log_dir, env=env, port=port,
                       timeout=timeout, host=self.address)
        self.servers.append(server)
        return server

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def kill_all(self) -> None:
        """Every process of the host at once (SIGKILL): a preempted node."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for server in self.servers:
            server.proc.wait()
        self.servers.clear()

    def cut(self) -> None:
        ip("link", "set", self.link, "down")

    def heal(self) -> None:
        ip("link", "set", self.link, "up")


def _let_the_bridge_forward(action: str) -> None:
    """A machine running Docker drops forwarded traffic (Docker sets the FORWARD policy to DROP, and bridged frames
    go through it): this network's own traffic is let through (``-I``) for the test, and the rule taken out (``-D``)
    after it."""
    if not shutil.which("iptables"):
        return
    for _ in range(1 if action == "-I" else 5):  # out again, however many a killed run left
        if subprocess.run(["iptables", action, "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"],
                          capture_output=True).returncode != 0:
            break


class Network:
    def __init__(self, names: list[str]) -> None:
        self.hosts = {name: Host(name, f"{SUBNET}.{10 + i}") for i, name in enumerate(names)}

    def __enter__(self) -> Network:
        self.tear_down()  # what a killed earlier run may have left
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        _let_the_bridge_forward("-I")
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "add", host.ns], check=True)
            ip("link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", host.ns)
            ip("link", "set", host.link, "master", BRIDGE)
            ip("link", "set", host.link, "up")
            ip("addr", "add", f"{host.address}/24", "dev", "eth0", ns=host.ns)
            ip("link", "set", "eth0", "up", ns=host.ns)
            ip("link", "set", "lo", "up", ns=host.ns)
        return self

    def __exit__(self, *_: object) -> None:
        for host in self.hosts.values():
            host.kill_all()
        self.tear_down()

    def tear_down(self) -> None:
        for host in self.hosts.values():
            for pid in host.pids():  # a namespace lives on while a process holds it
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            ip("link", "del", host.link, check=False)
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True)
        ip("link", "del", BRIDGE, check=False)
        _let_the_bridge_forward("-D")
