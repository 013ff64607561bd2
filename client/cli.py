"""``sneaky``: one entry point for the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _open_image(path: str, what: str):
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise SystemExit(f"sneaky: error: {what} not found: {path}")
    try:
        image = Image.open(p)
        image.load()
    except UnidentifiedImageError:
        raise SystemExit(f"sneaky: error: {what} {path} is not an image (JPEG, PNG, WebP, ...)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise SystemExit(f"sneaky: error: {what} {path} is damaged or truncated: {exc}") from None
    return image


def cmd_inpaint(args: argparse.Namespace) -> int:
    from pconv.images import InpaintError, encode, format_for_path
    from pconv.weights import WeightsError

    try:
        fmt = format_for_path(args.output)
    except InpaintError as exc:
        raise SystemExit(f"sneaky: error: {exc}") from None
    image = _open_image(args.photo, "photo")
    mask = _open_image(args.mask, "mask")
    from pconv.inpaint import Inpainter

    try:
        inpainter = Inpainter.load(args.engine, weights=args.weights)
        result = inpainter.inpaint(image, mask)
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        with open(args.output, "wb") as fp:
            encode(result, fp, fmt)
    except (InpaintError, WeightsError, FileNotFoundError) as exc:
        Path(args.output).unlink(missing_ok=True)
        raise SystemExit(f"sneaky: error: {exc}") from None
    print(f"{args.output}: {result.width}×{result.height} {result.mode} {fmt} ({inpainter.engine})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sneaky", description="Remove unwanted objects from photos.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inpaint", help="clean one photo locally, no services needed")
    p.add_argument("photo", help="the photo (JPEG, PNG, WebP, ...)")
    p.add_argument("--mask", required=True, help="mask of the photo's size: white (grey ≥ 128) = remove")
    p.add_argument("-o", "--output", required=True, help="output file; its extension picks the format")
    p.add_argument("--engine", default="pconv", choices=["pconv", "telea", "ns"])
    p.add_argument("--weights", help="a PConv safetensors file instead of the shipped weights")
    p.set_defaults(func=cmd_inpaint)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
