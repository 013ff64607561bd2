"""Hole generators, deterministic from a seed. Every generator returns a boolean
``H×W`` array with True = hole (the user's white), the convention outside the network."""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

EVAL_BUCKETS = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))


def hole_ratio(hole: np.ndarray) -> float:
    return float(np.count_nonzero(hole)) / hole.size


def keras_style(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """PConv-Keras style: random lines, circles and ellipses of random thickness."""
    canvas = np.zeros((height, width), np.uint8)
    scale = max(1, int(0.03 * (height + width) / 2))
    for _ in range(int(rng.integers(1, 20))):
        x1, x2 = rng.integers(1, width, 2)
        y1, y2 = rng.integers(1, height, 2)
        cv2.line(canvas, (int(x1), int(y1)), (int(x2), int(y2)), 255, int(rng.integers(3, scale + 4)))
    for _ in range(int(rng.integers(1, 20))):
        x, y = int(rng.integers(1, width)), int(rng.integers(1, height))
        cv2.circle(canvas, (x, y), int(rng.integers(3, scale + 4)), 255, -1)
    for _ in range(int(rng.integers(1, 20))):
        x, y = int(rng.integers(1, width)), int(rng.integers(1, height))
        axes = (int(rng.integers(1, max(2, width // 4))), int(rng.integers(1, max(2, height // 4))))
        angle, start, end = (int(v) for v in rng.integers(3, 180, 3))
        cv2.ellipse(canvas, (x, y), axes, angle, start, end, 255, int(rng.integers(3, scale + 4)))
    return canvas > 0


def free_form(height: int, width: int, rng: np.random.Generator, max_strokes: int = 4) -> np.ndarray:
    """DeepFill v2 free-form brush strokes: random walks of thick line segments with round joints."""
    canvas = np.zeros((height, width), np.uint8)
    side = math.sqrt(height * width)
    max_width = max(4, int(side / 10))
    max_length = side / 4
    for _ in range(int(rng.integers(1, max_strokes + 1))):
        x, y = float(rng.integers(0, width)), float(rng.integers(0, height))
        brush = int(rng.integers(max(2, max_width // 3), max_width + 1))
        for i in range(int(rng.integers(4, 13))):
            angle = rng.uniform(0, 2 * math.pi)
            if i % 2:
                angle = 2 * math.pi - angle
            length = rng.uniform(max_length / 4, max_length)
            nx = float(np.clip(x + length * math.cos(angle), 0, width - 1))
            ny = float(np.clip(y + length * math.sin(angle), 0, height - 1))
            cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), 255, brush)
            cv2.circle(canvas, (int(nx), int(ny)), brush // 2, 255, -1)
            x, y = nx, ny
    if rng.random() < 0.5:
        canvas = canvas[:, ::-1]
    if rng.random() < 0.5:
        canvas = canvas[::-1, :]
    return np.ascontiguousarray(canvas) > 0


_LAMA_WIDTHS = {"thin": (0.01, 0.03), "medium": (0.03, 0.07), "thick": (0.07, 0.12)}


def lama_style(height: int, width: int, rng: np.random.Generator, thickness: str | None = None) -> np.ndarray:
    """LaMa style: thin, medium or thick polyline strokes, plus boxes for thick masks."""
    thickness = thickness or str(rng.choice(list(_LAMA_WIDTHS)))
    lo, hi = _LAMA_WIDTHS[thickness]
    side = min(height, width)
    canvas = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(1, 6))):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        brush = max(1, int(rng.uniform(lo, hi) * side))
        for _ in range(int(rng.integers(1, 8))):
            angle = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(0.05, 0.4) * side
            nx = int(np.clip(x + length * math.cos(angle), 0, width - 1))
            ny = int(np.clip(y + length * math.sin(angle), 0, height - 1))
            cv2.line(canvas, (x, y), (nx, ny), 255, brush)
            x, y = nx, ny
    if thickness == "thick":
        for _ in range(int(rng.integers(0, 4))):
            bw, bh = (int(rng.uniform(0.1, 0.4) * s) for s in (width, height))
            x, y = int(rng.integers(0, width - bw + 1)), int(rng.integers(0, height - bh + 1))
            canvas[y : y + bh, x : x + bw] = 255
    return canvas > 0


GENERATORS = {"keras": keras_style, "freeform": free_form, "lama": lama_style}


class MaskGenerator:
    """Training masks: a mix of the generators, with hole ratios spread evenly over ``hole_range``.

    ``MaskGenerator(seed=s)`` yields the same sequence of masks for the same seed.
    """

    def __init__(
        self,
        kinds: tuple[str, ...] = ("keras", "freeform", "lama"),
        hole_range: tuple[float, float] = (0.01, 0.6),
        seed: int | None = 0,
    ) -> None:
        unknown = set(kinds) - set(GENERATORS)
        if unknown:
            raise ValueError(f"unknown mask kinds {sorted(unknown)}; choose from {sorted(GENERATORS)}")
        self.kinds = kinds
        self.hole_range = hole_range
        self.rng = np.random.default_rng(seed)

    def __call__(self, height: int, width: int) -> np.ndarray:
        """Draw a target ratio uniformly in ``hole_range`` and combine generator shapes until the
        hole reaches it, so large holes are as common as small ones (one shape alone is mostly small)."""
        lo, hi = self.hole_range
        target = self.rng.uniform(lo, hi)
        hole = np.zeros((height, width), bool)
        for _ in range(200):
            hole |= GENERATORS[str(self.rng.choice(self.kinds))](height, width, self.rng)
            if hole_ratio(hole) >= target:
                break
        ceiling = min(hi, max(lo, 1.5 * target))
        if hole_ratio(hole) > ceiling:  # one shape overshot a small target: cut it back
            hole = _trim_to(hole, ceiling, self.rng)
        if hole_ratio(hole) < lo:  # trimmed too far (tiny ranges): start again
            return self(height, width)
        return hole


def _trim_to(hole: np.ndarray, limit: float, rng: np.random.Generator) -> np.ndarray:
    hole = hole.copy()
    h, w = hole.shape
    while hole_ratio(hole) > limit:
        bh, bw = int(rng.integers(h // 8, h // 2 + 1)), int(rng.integers(w // 8, w // 2 + 1))
        y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        hole[y : y + bh, x : x + bw] = False
    return hole


def bucket_masks(
    height: int,
    width: int,
    per_bucket: int,
    buckets: tuple[tuple[float, float], ...] = EVAL_BUCKETS,
    seed: int = 0,
) -> Iterator[tuple[tuple[float, float], np.ndarray]]:
    """Evaluation masks: ``per_bucket`` free-form masks whose hole ratio r lies in lo < r ≤ hi,
    for each bucket, built by adding strokes until the ratio enters the bucket."""
    rng = np.random.default_rng(seed)
    for lo, hi in buckets:
        made = 0
        while made < per_bucket:
            hole = np.zeros((height, width), bool)
            while hole_ratio(hole) <= lo:
                hole |= free_form(height, width, rng, max_strokes=1)
            if hole_ratio(hole) <= hi:
                made += 1
                yield (lo, hi), hole
