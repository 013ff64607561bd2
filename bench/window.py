"""What a larger PConv window costs: photos with a large hole filled through ``Inpainter`` with
the network's window (the largest crop side it fills at full resolution; larger crops are filled
at reduced scale) at several sides. Time interleaved in one process; peak memory of one fill,
each in a fresh process.

    python bench/window.py [--sizes 1024 2048] [--windows 512 768 1024] [--repeats 3] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.inpaint_timing import median_seconds, photo_and_hole  # noqa: E402
from pconv.inpaint import Inpainter, PConvFiller  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402
from pconv.weights import DEFAULT_WEIGHTS, load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUCKET = (0.4, 0.5)

# VmHWM of a fresh process: the fill's peak over the loaded model's
ONE_FILL = """
import json, sys
sys.path.insert(0, sys.argv[3])
from bench.window import BUCKET, inpainter, photo_and_hole
peak = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])
filler = inpainter(int(sys.argv[2]))
image, hole = photo_and_hole(int(sys.argv[1]), BUCKET)
before = peak()
filler.inpaint_hole(image, hole)
print(json.dumps({"before_kb": before, "peak_kb": peak()}))
"""


def inpainter(window: int) -> Inpainter:
    return Inpainter(PConvFiller(load_model(DEFAULT_WEIGHTS), window=window))


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
        image, hole = photo_and_hole(side, BUCKET)
        seconds = median_seconds(variants, image, hole, args.repeats)
        for window, spent in seconds.items():
            lines.append(f"| {image.width}×{image.height} | {hole.mean():.0%} | {window} | {spent * 1000:.0f} | "
                         f"{spent / seconds[first]:.2f}× | {peak_mb(side, window):.0f} |")
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
