"""What flip averaging costs: a photo filled through ``Inpainter`` with and without it, interleaved.

    python bench/flip_average.py [--sizes 512 1024] [--repeats 5] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.inpaint_timing import parse_args, ratio_table  # noqa: E402
from pconv.inpaint import Inpainter  # noqa: E402
from pconv.report import machine_description, write_section  # noqa: E402


def main(argv=None) -> int:
    args = parse_args(__doc__, argv)
    variants = {"one pass": Inpainter.load("pconv", flip_average=False), "flip averaged": Inpainter.load("pconv")}
    text = ratio_table(variants, args.sizes, args.repeats)
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
