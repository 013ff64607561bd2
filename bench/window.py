"""What a larger PConv window costs: photos with a large hole filled through ``Inpainter`` with
the network's window (the largest crop side it fills at full resolution; larger crops are filled
at reduced scale) at several sides. Time interleaved in one process; peak memory of one fill,
each in a fresh process.

    python bench/window.py [--sizes 1024 2048] [--windows 512 768 1024] [--repeats 3] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pconv.inpaint import Inpainter, PConvFiller  # noqa: E402
from pconv.masks import bucket_masks  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402
from pconv.weights import DEFAULT_WEIGHTS, load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUCKET = (0.4, 0.5)

# VmHWM of a fresh process: the fill's peak over the loaded model's
ONE_FILL = """
import json, sys
sys.path.insert(0, sys.argv[3])
from bench.window import inpainter, photo_and_hole
peak = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])
filler = inpainter(int(sys.argv[2]))
image, hole = photo_and_hole(int(sys.argv[1]))
before = peak()
filler.inpaint_hole(image, hole)
print(json.dumps({"before_kb": before, "peak_kb": peak()}))
"""


def inpainter(window: int) -> Inpainter:
    return Inpainter(PConvFiller(load_model(DEFAULT_WEIGHTS), window=window))


def photo_and_hole(side: int, seed: int = 0) -> tuple[Image.Image, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (side * 3 // 4, side, 3), dtype=np.uint8))
    ((_, hole),) = bucket_masks(image.height, image.width, per_bucket=1, buckets=(BUCKET,), seed=seed)
    return image, hole


def peak_mb(side: int, window: int) -> float:
    out = subprocess.run([sys.executable, "-c", ONE_FILL, str(side), str(window), str(ROOT)],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    record = json.loads(out.strip().splitlines()[-1])
    return (record["peak_kb"] - record["before_kb"]) / 1024


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    p.add_argument("--windows", type=int, nargs="+", default=[512, 768, 1024])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--write")
    args = p.parse_args(argv)
    variants = {window: inpainter(window) for window in args.windows}
    first = args.windows[0]
    lines = ["| photo | hole | window | ms | time vs " + f"{first} | fill's peak memory, MB |",
             "| --- | --- | --- | --- | --- | --- |"]
    for side in args.sizes:
        image, hole = photo_and_hole(side)
        times: dict[int, list[float]] = {window: [] for window in variants}
        for filler in variants.values():
            filler.inpaint_hole(image, hole)  # warm-up
        for _ in range(args.repeats):  # interleaved, so a noisy neighbour hits all alike
            for window, filler in variants.items():
                start = time.perf_counter()
                filler.inpaint_hole(image, hole)
                times[window].append(time.perf_counter() - start)
        base = statistics.median(times[first])
        for window in variants:
            ms = statistics.median(times[window])
            lines.append(f"| {image.width}×{image.height} | {hole.mean():.0%} | {window} | {ms * 1000:.0f} | "
                         f"{ms / base:.2f}× | {peak_mb(side, window):.0f} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    print("\n" + text)
    if args.write:
        body = (f"{machine_description()}, torch {torch.__version__}, {torch.get_num_threads()} threads, the shipped "
                f"weights with flip averaging, CPU, median of {args.repeats}; one free-form hole in the "
                f"({BUCKET[0]:g}, {BUCKET[1]:g}] area bucket, whose crop is wider than every window here, so the "
                "window decides the resolution the network works at. Memory: the rise of peak RSS during one "
                "fill, in a fresh process after loading.\n\n" + text)
        write_section(Path(args.write), "window", body, "python bench/window.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
