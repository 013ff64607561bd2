"""What the Telea bridge at the hole's edge costs: a photo filled through ``Inpainter`` without it and
with bands of 5 (the default) and 8 pixels, interleaved.

    python bench/bridge.py [--sizes 512 1024] [--repeats 5] [--write docs/benchmarks.md]
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

DEPTHS = (0, 5, 8)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--write")
    args = p.parse_args(argv)
    variants = {depth: Inpainter.load("pconv", bridge=depth) for depth in DEPTHS}
    lines = ["| photo | hole | " + " | ".join(f"bridge {d}, ms" for d in DEPTHS) + " | 5 / 0 | 8 / 0 |",
             "| --- | --- |" + " --- |" * (len(DEPTHS) + 2)]
    for side in args.sizes:
        image, hole = photo_and_hole(side, (0.1, 0.2))
        ms = {d: s * 1000 for d, s in median_seconds(variants, image, hole, args.repeats).items()}
        lines.append(f"| {image.width}×{image.height} | {hole.mean():.0%} | "
                     + " | ".join(f"{ms[d]:.0f}" for d in DEPTHS) + f" | {ms[5] / ms[0]:.2f}× | {ms[8] / ms[0]:.2f}× |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print("\n" + text)
    if args.write:
        body = (f"{machine_description()}, torch {torch.__version__}, {torch.get_num_threads()} threads, the shipped "
                f"weights, CPU, flip averaging on, median of {args.repeats}, free-form hole of 10-20 % of the photo. "
                "The whole `Inpainter` call is timed; the ratios are the price of the bridge per photo.\n\n" + text)
        write_section(Path(args.write), "edge bridge", body, "python bench/bridge.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
