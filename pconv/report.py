"""Markdown reports shared by evaluation and the benchmark scripts: the machine, replaceable sections."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 1024**2:.0f} GiB"
    except (OSError, AttributeError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def write_section(path: Path, title: str, body: str, command: str, document: str = "Benchmarks") -> None:
    """Replace (or append) the section '## title' of a markdown file, keeping the others."""
    fresh = f"# {document}\n\nEvery table is written by the command named above it.\n"
    text = path.read_text() if path.exists() else fresh
    section = f"## {title}\n\n`{command}`\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
