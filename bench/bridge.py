"""What the Telea bridge at the hole's edge costs: a photo filled through ``Inpainter`` without it and
with bands of 5 (the default) and 8 pixels, interleaved.

    python bench/bridge.py [--sizes 512 1024] [--repeats 5] [--write docs/benchmarks.md]
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
    variants = {f"bridge {d}": Inpainter.load("pconv", bridge=d) for d in (0, 5, 8)}
    text = ratio_table(variants, args.sizes, args.repeats)
    print("\n" + text)
    if args.write:
        body = (f"{machine_description()}, torch {torch.__version__}, {torch.get_num_threads()} threads, the shipped "
                f"weights, CPU, flip averaging on, median of {args.repeats}, free-form hole of 10-20 % of the photo. "
                "The whole `Inpainter` call is timed; the ratios are the price of the bridge per photo.\n\n" + text)
        write_section(Path(args.write), "edge bridge", body, "python bench/bridge.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
