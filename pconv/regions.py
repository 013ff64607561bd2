"""Where to run the model: boxes around the holes, with context around each."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

# Connected components run on a map of at most this many cells: a 144-megapixel
# mask is reduced by blocks first, so labelling costs megabytes, not gigabytes.
MAX_LABEL_CELLS = 4_000_000


class Box(NamedTuple):
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def overlaps(self, other: Box) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def union(self, other: Box) -> Box:
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))


def hole_boxes(hole: np.ndarray, join: int = 0) -> list[Box]:
    """Boxes around the hole's regions; holes closer than ``2 × join`` pixels share a region
    (so a speckled mask gives a few crops, not one per speck). Runs on blocks for huge masks:
    a block box can only be larger than the exact one, never miss a hole pixel."""
    h, w = hole.shape
    block = max(1, int(np.ceil(np.sqrt(h * w / MAX_LABEL_CELLS))))
    grid = hole
    if block > 1:
        grid = np.logical_or.reduceat(hole, np.arange(0, h, block), axis=0)
        grid = np.logical_or.reduceat(grid, np.arange(0, w, block), axis=1)
    grid = grid.view(np.uint8)
    radius = -(-join // block)
    if radius:
        grid = cv2.dilate(grid, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
    boxes = []
    for x, y, bw, bh, _area in stats[1:count]:
        boxes.append(Box(x * block, y * block, min(w, (x + bw) * block), min(h, (y + bh) * block)))
    return merge_overlapping(boxes)


def _context_span(lo: int, hi: int, limit: int, margin: int, min_side: int, window: int) -> tuple[int, int]:
    """Grow [lo, hi) by the margin and to at least min_side, without passing the window
    (unless the hole alone is wider), centred on the hole and kept inside [0, limit)."""
    side = hi - lo
    want = max(side, min(window, max(side + 2 * margin, min_side)))
    want = min(want, limit)
    start = lo - (want - side) // 2
    start = max(0, min(start, limit - want))
    return start, start + want


def merge_overlapping(boxes: list[Box]) -> list[Box]:
    """Union boxes until none overlap, so every hole pixel belongs to exactly one box."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if boxes[i].overlaps(boxes[j]):
                    boxes[i] = boxes[i].union(boxes.pop(j))
                    merged = True
                    break
            if merged:
                break
    return boxes


def plan_regions(
    holes: list[Box], size: tuple[int, int], margin: int, min_side: int, window: int
) -> list[tuple[Box, Box]]:
    """(crop, hole box) pairs for non-overlapping hole boxes (``hole_boxes``), so each hole pixel is written by
    exactly one region; crops (hole box plus context) may overlap, as a crop treats every
    hole pixel inside it as unknown, whichever region owns it."""
    width, height = size
    regions = []
    for hole in holes:
        x0, x1 = _context_span(hole.x0, hole.x1, width, margin, min_side, window)
        y0, y1 = _context_span(hole.y0, hole.y1, height, margin, min_side, window)
        regions.append((Box(x0, y0, x1, y1), hole))
    return regions
