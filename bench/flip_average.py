"""What flip averaging costs: a photo filled through ``Inpainter`` with and without it, interleaved.

    python bench/flip_average.py [--sizes 512 1024] [--repeats 5] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.inpaint_timing import median_seconds, photo_and_hole  # noqa: E402
from pconv.inpaint import Inpainter  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--write")
    args = p.parse_args(argv)
    variants = {"one pass": Inpainter.load("pconv", flip_average=False), "flip averaged": Inpainter.load("pconv")}
    lines = ["| photo | hole | one pass, ms | flip averaged, ms | ratio |", "| --- | --- | --- | --- | --- |"]
    for side in args.sizes:
        image, hole = photo_and_hole(side, (0.1, 0.2))
        one, two = (seconds * 1000 for seconds in median_seconds(variants, image, hole, args.repeats).values())
        lines.append(f"| {image.width}×{image.height} | {hole.mean():.0%} | {one:.0f} | {two:.0f} | {two / one:.2f}× |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print("\n" + text)
    if args.write:
        body = (f"{machine_description()}, torch {torch.__version__}, {torch.get_num_threads()} threads, the shipped "
                f"weights, CPU, median of {args.repeats}, free-form hole of 10-20 % of the photo. The whole "
                "`Inpainter` call (hole planning, crops, compositing) is timed; the ratio is the price of flip "
                "averaging per photo on this machine (a GPU, where a pass of two crops costs little more than "
                "one, is unmeasured).\n\n" + text)
        write_section(Path(args.write), "flip averaging", body,
                      "python bench/flip_average.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
