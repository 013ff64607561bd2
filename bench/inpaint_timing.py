"""What the ``Inpainter`` benchmarks share: a noise photo with one seeded free-form hole, and
median times of several inpainters on it, interleaved so a noisy neighbour hits all alike."""

from __future__ import annotations

import statistics
import time

import numpy as np
from PIL import Image

from pconv.masks import bucket_masks


def photo_and_hole(side: int, bucket: tuple[float, float], seed: int = 0) -> tuple[Image.Image, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (side * 3 // 4, side, 3), dtype=np.uint8))
    ((_, hole),) = bucket_masks(image.height, image.width, per_bucket=1, buckets=(bucket,), seed=seed)
    return image, hole


def median_seconds(variants: dict, image: Image.Image, hole: np.ndarray, repeats: int) -> dict:
    """{name: median seconds of ``inpaint_hole``} after one warm-up call each."""
    times: dict = {name: [] for name in variants}
    for inpainter in variants.values():
        inpainter.inpaint_hole(image, hole)
    for _ in range(repeats):
        for name, inpainter in variants.items():
            start = time.perf_counter()
            inpainter.inpaint_hole(image, hole)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(spent) for name, spent in times.items()}
