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


def parse_args(doc: str, argv=None):
    """The arguments every Inpainter comparison takes: photo sides, repeats, the markdown to write."""
    import argparse

    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--write")
    return p.parse_args(argv)


def ratio_table(variants: dict, sizes: list[int], repeats: int, bucket: tuple[float, float] = (0.1, 0.2)) -> str:
    """A markdown table: per photo side, each variant's median ms and its time against the first variant's."""
    names = list(variants)
    first = names[0]
    lines = ["| photo | hole | " + " | ".join(f"{n}, ms" for n in names) + " | "
             + " | ".join(f"{n} / {first}" for n in names[1:]) + " |",
             "| --- | --- |" + " --- |" * (2 * len(names) - 1)]
    for side in sizes:
        image, hole = photo_and_hole(side, bucket)
        ms = {n: s * 1000 for n, s in median_seconds(variants, image, hole, repeats).items()}
        times = " | ".join(f"{ms[n]:.0f}" for n in names)
        ratios = " | ".join(f"{ms[n] / ms[first]:.2f}×" for n in names[1:])
        lines.append(f"| {image.width}×{image.height} | {hole.mean():.0%} | {times} | {ratios} |")
        print(lines[-1], flush=True)
    return "\n".join(lines)
