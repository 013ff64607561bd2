"""Hole generators, deterministic from a seed. Every generator returns a boolean
``H×W`` array with True = hole (the user's white), the convention outside the network."""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

EVAL_BUCKETS = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
# what people paint over a thing they want gone: one filled shape of 2-20 % of the photo
OBJECT_BUCKETS = ((0.02, 0.05), (0.05, 0.1), (0.1, 0.2))
OBJECT_KINDS = ("blob", "polygon", "rectangle", "figure")


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


def _outline(kind: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Closed outlines (points in about [-1, 1]², y down) of one object of ``kind``, unrotated."""
    if kind == "blob":
        angles = np.linspace(0, 2 * math.pi, 72, endpoint=False)
        radius = np.ones_like(angles)
        for k in range(1, 5):
            radius += rng.uniform(0, 0.3 / k) * np.cos(k * angles + rng.uniform(0, 2 * math.pi))
        aspect = rng.uniform(0.35, 1.0)
        return [np.stack([radius * np.cos(angles), aspect * radius * np.sin(angles)], 1)]
    if kind == "polygon":
        angles = np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(3, 11))))
        radius = rng.uniform(0.35, 1.0, len(angles))
        return [np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1)]
    if kind == "rectangle":
        aspect = rng.uniform(0.2, 1.0)
        return [np.array([[-1, -aspect], [1, -aspect], [1, aspect], [-1, aspect]], float)]
    if kind == "figure":  # a standing person or animal: head, body, limbs, each a filled polygon
        body = rng.uniform(0.25, 0.45)
        head = rng.uniform(0.12, 0.2)
        parts = [_ellipse(0, -0.8, head, head * 1.15), _ellipse(0, -0.2, body, 0.45)]
        for side in (-1, 1):
            spread = rng.uniform(0.05, 0.3)
            parts.append(_limb((side * body * 0.5, 0.2), (side * (body * 0.5 + spread), 1.0), body * 0.45))
            parts.append(_limb((side * body * 0.8, -0.5), (side * (body + rng.uniform(0.1, 0.5)),
                                                            rng.uniform(-0.6, 0.2)), body * 0.3))
        return parts
    raise ValueError(f"unknown object kind {kind!r}; choose from {OBJECT_KINDS}")


def _ellipse(x: float, y: float, rx: float, ry: float) -> np.ndarray:
    angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    return np.stack([x + rx * np.cos(angles), y + ry * np.sin(angles)], 1)


def _limb(start: tuple[float, float], end: tuple[float, float], thickness: float) -> np.ndarray:
    (x1, y1), (x2, y2) = start, end
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    nx, ny = -(y2 - y1) / length * thickness / 2, (x2 - x1) / length * thickness / 2
    return np.array([[x1 + nx, y1 + ny], [x2 + nx, y2 + ny], [x2 - nx, y2 - ny], [x1 - nx, y1 - ny]])


def object_shape(height: int, width: int, rng: np.random.Generator, area: float | None = None,
                 kind: str | None = None) -> np.ndarray:
    """One filled object as people paint over it (a blob, polygon, rectangle or figure), of about
    ``area`` of the image (default: uniform in 2-20 %), at a random place, angle and aspect."""
    area = float(rng.uniform(0.02, 0.2)) if area is None else area
    kind = kind or str(rng.choice(OBJECT_KINDS))
    parts = _outline(kind, rng)
    # rectangles are mostly drawn upright; figures stand; blobs and polygons turn freely
    angle = {"rectangle": rng.choice([0.0, rng.uniform(-0.3, 0.3)]), "figure": rng.uniform(-0.25, 0.25)}.get(
        kind, rng.uniform(0, 2 * math.pi))
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    if rng.random() < 0.5:
        parts = [p * [-1, 1] for p in parts]
    parts = [p @ turn.T for p in parts]
    # draw once at a reference scale to learn the unit area, then once at the scale that gives ``area``
    reference = 256
    unit = np.zeros((2 * reference, 2 * reference), np.uint8)
    cv2.fillPoly(unit, [np.round(p * reference / 2 + reference).astype(np.int32) for p in parts], 255)
    unit_area = np.count_nonzero(unit) / (reference / 2) ** 2
    scale = math.sqrt(area * height * width / unit_area)
    lo = np.min([p.min(0) for p in parts], 0) * scale
    hi = np.max([p.max(0) for p in parts], 0) * scale
    span = hi - lo
    # the centre moves so the object lies inside the image where it fits, and clips where it does not
    cx = rng.uniform(-lo[0], width - hi[0]) if span[0] < width else width / 2 - (lo[0] + hi[0]) / 2
    cy = rng.uniform(-lo[1], height - hi[1]) if span[1] < height else height / 2 - (lo[1] + hi[1]) / 2
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillPoly(canvas, [np.round(p * scale + [cx, cy]).astype(np.int32) for p in parts], 255)
    return canvas > 0


GENERATORS = {"keras": keras_style, "freeform": free_form, "lama": lama_style, "object": object_shape}


DEFAULT_KINDS = ("keras", "freeform", "lama", "object")


class MaskGenerator:
    """Training masks: a mix of the generators, with hole ratios spread evenly over ``hole_range``.
    Each shape's generator is drawn evenly from ``kinds``; naming a kind twice doubles its share.

    ``MaskGenerator(seed=s)`` yields the same sequence of masks for the same seed.
    """

    def __init__(
        self,
        kinds: tuple[str, ...] = DEFAULT_KINDS,
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


def object_masks(
    height: int, width: int, per_bucket: int, buckets: tuple[tuple[float, float], ...] = OBJECT_BUCKETS, seed: int = 0
) -> Iterator[tuple[tuple[float, float], np.ndarray]]:
    """Evaluation masks shaped like objects: ``per_bucket`` filled shapes whose hole ratio r lies in
    lo < r ≤ hi, for each bucket, cycling through the object kinds."""
    rng = np.random.default_rng(seed)
    for lo, hi in buckets:
        made = 0
        while made < per_bucket:
            kind = OBJECT_KINDS[int(rng.integers(len(OBJECT_KINDS)))]
            hole = object_shape(height, width, rng, area=float(rng.uniform(lo, hi)), kind=kind)
            if lo < hole_ratio(hole) <= hi:  # a shape clipped by a narrow photo may fall short: draw again
                made += 1
                yield (lo, hi), hole
