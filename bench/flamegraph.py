"""Folded stacks (py-spy's ``raw`` format: ``frame;frame;frame count`` per line) as a flame graph SVG and
as a table of the frames that cost most. Our own few lines, so the docs can show where a job's CPU goes
without a second tool."""

from __future__ import annotations

import html
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# py-spy writes "function (path/to/file.py:line)"; the flame graph merges a function's lines
FRAME = re.compile(r"^(?P<name>.*?) \((?P<path>[^():]*)(?::\d+)?\)$")


def frame_label(frame: str) -> str:
    """``function (module.py)``: the file's name, not its path or line."""
    m = FRAME.match(frame)
    if not m:
        return frame
    return f"{m['name']} ({Path(m['path']).name})"


def read_folded(path: Path, anchors: tuple[str, ...] = (), outside: str = "elsewhere",
                keep: int = 4) -> Counter[tuple[str, ...]]:
    """Stacks and their sample counts. With ``anchors`` (labels that start the work of interest: a task,
    a request), a stack through one is cut to start there, and any other stack keeps only its last
    ``keep`` frames, under one frame named ``outside``: the server's own loops say nothing per job."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(frame_label(f) for f in stack.split(";"))
        if anchors:
            at = next((i for i, label in enumerate(frames) if label.startswith(anchors)), None)
            frames = frames[at:] if at is not None else (outside, *frames[-keep:])
        stacks[frames] += int(count)
    return stacks


@dataclass
class Node:
    name: str
    count: int = 0
    children: dict[str, Node] = field(default_factory=dict)


def tree(stacks: Counter[tuple[str, ...]]) -> Node:
    root = Node("all")
    for frames, count in stacks.items():
        node = root
        node.count += count
        for frame in frames:
            node = node.children.setdefault(frame, Node(frame))
            node.count += count
    return root


def top_frames(stacks: Counter[tuple[str, ...]], n: int = 15) -> list[tuple[str, float, float]]:
    """The ``n`` frames with the largest share of samples, inclusive (anywhere on the stack) and
    self (on top): ``(frame, inclusive %, self %)``."""
    total = sum(stacks.values()) or 1
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, count in stacks.items():
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count
    return [(frame, 100 * count / total, 100 * own[frame] / total) for frame, count in inclusive.most_common(n)]


def svg(stacks: Counter[tuple[str, ...]], title: str, width: int = 1200, row: int = 16,
        min_share: float = 0.002) -> str:
    """A flame graph: the root at the bottom, each frame as wide as its share of samples; frames
    under ``min_share`` of the total are left out. Hover a frame for its name and share."""
    root = tree(stacks)
    total = root.count or 1
    boxes: list[tuple[int, float, float, Node]] = []

    def place(node: Node, depth: int, x: float) -> None:
        boxes.append((depth, x, node.count / total * width, node))
        for child in sorted(node.children.values(), key=lambda c: c.name):
            if child.count / total >= min_share:
                place(child, depth + 1, x)
            x += child.count / total * width

    place(root, 0, 0.0)
    depth = max(d for d, _, _, _ in boxes) + 1
    height = depth * row + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="monospace" font-size="11">',
             f'<text x="4" y="16" font-size="14">{html.escape(title)}</text>']
    for d, x, w, node in boxes:
        y = height - (d + 1) * row - 4
        hue = zlib.crc32(node.name.encode()) % 60  # reds to yellows, stable per frame
        share = 100 * node.count / total
        label = html.escape(node.name)
        chars = int((w - 4) / 6.6)
        text = label if len(node.name) <= chars else html.escape(node.name[: max(0, chars - 1)]) + "…"
        parts.append(f'<g><title>{label}: {share:.1f} %</title>'
                     f'<rect x="{x:.1f}" y="{y}" width="{max(w - 0.5, 0.1):.1f}" height="{row - 1}" '
                     f'fill="hsl({hue},85%,62%)"/>'
                     + (f'<text x="{x + 2:.1f}" y="{y + row - 5}">{text}</text>' if chars >= 3 else "")
                     + "</g>")
    parts.append("</svg>")
    return "\n".join(parts)
