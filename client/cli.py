"""``sneaky``: one entry point for the command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow loads only where an image is opened
    from PIL import Image


def _open_image(path: str, what: str) -> Image.Image:
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
    from pconv.images import InpaintError, check_mask_size, format_for_path, grow_hole, mask_to_hole, upright
    from pconv.results import check_output, output_for, write_result

    try:
        fmt = format_for_path(args.output)
    except InpaintError as exc:
        raise SystemExit(f"sneaky: error: {exc}") from None
    image = _open_image(args.photo, "photo")
    mask = _open_image(args.mask, "mask")
    from pconv.inpaint import Inpainter

    try:
        output = output_for(image.format or "", fmt, args.quality)
        check_output(output, args.quality, image.mode)
        inpainter = Inpainter.load(args.engine, weights=args.weights)
        photo, mask = upright(image), upright(mask)
        check_mask_size(photo.size, mask.size)
        hole = grow_hole(mask_to_hole(mask), args.grow)
        result = inpainter.inpaint_hole(photo, hole)
        written = write_result(Path(args.photo).read_bytes(), image.format or "", result, lambda: hole, output,
                               args.quality)
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_bytes(written.data)
    except (InpaintError, ValueError, FileNotFoundError) as exc:  # ValueError: pconv.weights.WeightsError too
        Path(args.output).unlink(missing_ok=True)
        raise SystemExit(f"sneaky: error: {exc}") from None
    how = ", patched where the hole is" if written.patched else ""
    print(f"{args.output}: {result.width}×{result.height} {result.mode} {fmt}{how} ({inpainter.engine})")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from .up import up

    return up(args.host, args.port, args.data_dir, args.workers, args.grace)


def cmd_worker(args: argparse.Namespace) -> int:
    from .up import worker_command

    command = worker_command(args.queues, args.concurrency)
    os.execv(command[0], command)  # Celery in this process: signals and exit status are the container's
    return 1


def cmd_api(args: argparse.Namespace) -> int:
    from .up import api_command

    command = api_command(args.host, args.port, args.processes, args.threads)
    os.execv(command[0], command)
    return 1


def cmd_submit(args: argparse.Namespace) -> int:
    import requests

    from .sdk import SneakyClient, SneakyError

    for path, what in ((args.photo, "photo"), (args.mask, "mask")):
        if not Path(path).is_file():
            raise SystemExit(f"sneaky: error: {what} not found: {path}")
    client = SneakyClient(args.url, os.environ.get("SNEAKY_API_KEY"), retries=3)
    try:
        output = args.format or _format_of_output_file(args.photo, args.output, args.quality)
        job = client.submit(args.photo, args.mask, args.engine, args.priority, grow=args.grow, output=output,
                            quality=args.quality)
        print(f"job {job.id} {job.status}", flush=True)
        if not args.wait:
            return 0
        job = client.wait(job.id, args.timeout)
        if job.status != "succeeded":
            error = job.error or {}
            raise SystemExit(f"sneaky: job {job.id} {job.status}: {error.get('code')}: {error.get('message')}")
        photo = Path(args.photo)
        suffix = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}.get(output, photo.suffix)
        out = args.output or str(photo.with_name(photo.stem + ".clean" + suffix))
        size = client.download(job.id, out)
        print(f"{out}: {size:,} bytes ({job.engine})")
        return 0
    except SneakyError as exc:
        raise SystemExit(f"sneaky: error: {exc}") from None
    except requests.ConnectionError:
        raise SystemExit(f"sneaky: error: cannot reach {args.url}; is `sneaky up` running?") from None


def cmd_webhooks(args: argparse.Namespace) -> int:
    import requests

    from .sdk import SneakyClient, SneakyError

    client = SneakyClient(args.url, os.environ.get("SNEAKY_API_KEY"), retries=3)
    try:
        print(client.webhook_secret(rotate=args.action == "rotate"))
        return 0
    except SneakyError as exc:
        raise SystemExit(f"sneaky: error: {exc}") from None
    except requests.ConnectionError:
        raise SystemExit(f"sneaky: error: cannot reach {args.url}") from None


def cmd_batch(args: argparse.Namespace) -> int:
    import requests

    from .batch import BatchRefused, run_batch
    from .sdk import SneakyClient, SneakyError

    if not Path(args.photos_dir).is_dir():
        raise SystemExit(f"sneaky: error: not a folder: {args.photos_dir}")
    if args.masks and not Path(args.masks).is_dir():
        raise SystemExit(f"sneaky: error: not a folder: {args.masks}")
    if args.mask and not Path(args.mask).is_file():
        raise SystemExit(f"sneaky: error: mask not found: {args.mask}")
    client = SneakyClient(args.url, os.environ.get("SNEAKY_API_KEY"))
    try:
        return run_batch(client, args.photos_dir, args.out, args.masks, args.mask, args.concurrency,
                         args.engine, args.priority, grow=args.grow, output=args.format or "same",
                         quality=args.quality)
    except BatchRefused as exc:
        print(f"sneaky: error: {exc}\n{exc.table()}", file=sys.stderr)
        return 1
    except SneakyError as exc:
        raise SystemExit(f"sneaky: error: {exc}") from None
    except requests.ConnectionError:
        raise SystemExit(f"sneaky: error: cannot reach {args.url}") from None


def cmd_keys(args: argparse.Namespace) -> int:
    import redis

    from core.keys import KeyStore

    store = KeyStore(redis.Redis.from_url(args.redis_url))
    try:
        if args.action == "create":
            secret, key = store.create(args.tenant, args.name or "")
            print(f"key {key.id} for tenant {key.tenant} (shown once, keep it secret):\n{secret}")
        elif args.action == "list":
            for key in store.list():
                state = "revoked" if key.revoked else "active"
                print(f"{key.id}  {key.tenant:20} {state:8} {key.created_at}  {key.name}")
        elif not store.revoke(args.key_id):
            raise SystemExit(f"sneaky: error: no single key matches {args.key_id!r} (give at least 8 characters)")
        else:
            print(f"revoked {args.key_id}")
    except (ValueError, redis.RedisError) as exc:
        raise SystemExit(f"sneaky: error: {exc}") from None
    return 0


def _format_of_output_file(photo: str, output_file: str | None, quality: int | None) -> str:
    """``submit -o`` names the format as ``inpaint -o`` does: by its extension (the photo's own: ``same``)."""
    from pconv.images import InpaintError, format_for_path
    from pconv.results import output_for

    if not output_file:
        return "same"
    try:
        return output_for(format_for_path(photo), format_for_path(output_file), quality)
    except InpaintError as exc:
        raise SystemExit(f"sneaky: error: {exc}") from None


def _quality(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("between 1 and 100")
    return value


def _add_output(parser: argparse.ArgumentParser, with_format: bool = True) -> None:
    if with_format:
        parser.add_argument("--format", choices=["same", "png", "jpeg", "webp"],
                            help="the result's format: same (the photo's; a JPEG comes back with only the blocks at "
                                 "the hole coded anew), png, jpeg or webp")
    parser.add_argument("--quality", type=_quality, metavar="1-100",
                        help="JPEG or WebP quality when converting (a JPEG kept as JPEG keeps its own tables)")


def _grow_pixels(text: str) -> int:
    from pconv.images import MAX_GROW

    value = int(text)
    if not 0 <= value <= MAX_GROW:
        raise argparse.ArgumentTypeError(f"between 0 and {MAX_GROW}")
    return value


def _add_grow(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grow", type=_grow_pixels, default=0, metavar="PIXELS",
                        help="fill the pixels within this distance of the mask too (an object's soft edge and "
                             "shadow); default 0")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return action.help or ""
        return super()._get_help_string(action) or ""


ENGINE_HELP = "pconv (the network), telea or ns (OpenCV's classical fills)"
URL_HELP = "the API's address (or SNEAKY_URL)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sneaky", description="Remove unwanted objects from photos.")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, formatter_class=_Help)

    p = command("inpaint", "clean one photo locally, no services needed")
    p.add_argument("photo", help="the photo (JPEG, PNG, WebP, ...)")
    p.add_argument("--mask", required=True, help="mask of the photo's size: white (grey ≥ 128) = remove")
    p.add_argument("-o", "--output", required=True, help="output file; its extension (.jpg, .png, .webp) picks the "
                   "format: the photo's own keeps it as close to the input as it can (a JPEG is patched where the "
                   "hole is)")
    p.add_argument("--engine", default="pconv", choices=["pconv", "telea", "ns"], help=ENGINE_HELP)
    p.add_argument("--weights", help="a PConv safetensors file instead of the shipped weights")
    _add_grow(p)
    _add_output(p, with_format=False)
    p.set_defaults(func=cmd_inpaint)

    p = command("up", "run the whole service on this machine (Redis, API, one worker)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address the API listens on (make up HOST=…); other than loopback needs API keys")
    p.add_argument("--port", type=int, default=8000, help="the API's port (make up PORT=…)")
    p.add_argument("--data-dir", default="./.sneaky", help="Redis data and stored photos")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (make up WORKERS=…), each with its share of the cores")
    p.add_argument("--grace", type=float, default=60.0,
                   help="seconds a running job may take to finish on stop (then it is killed and runs again later)")
    p.set_defaults(func=cmd_up)

    p = command("submit", "submit one photo to a running API")
    p.add_argument("photo", help="the photo (JPEG, PNG or WebP)")
    p.add_argument("--mask", required=True, help="mask of the photo's size: white (grey ≥ 128) = remove")
    p.add_argument("--url", default=os.environ.get("SNEAKY_URL", "http://127.0.0.1:8000"), help=URL_HELP)
    p.add_argument("--engine", choices=["pconv", "telea", "ns"], help=ENGINE_HELP + "; default: the API's")
    p.add_argument("--priority", default="interactive", choices=["interactive", "bulk"],
                   help="interactive jobs go ahead of bulk ones")
    p.add_argument("--wait", action="store_true", help="wait for the result and download it")
    p.add_argument("-o", "--output", help="where --wait writes the result (default: PHOTO.clean.EXT); its extension "
                   "picks the format, as for inpaint, unless --format says")
    p.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits at most")
    _add_grow(p)
    _add_output(p)
    p.set_defaults(func=cmd_submit)

    p = command("batch", "clean a folder of photos through an API (resumable)")
    p.add_argument("photos_dir", help="folder of photos (JPEG, PNG, WebP)")
    masks = p.add_mutually_exclusive_group(required=True)
    masks.add_argument("--masks", help="folder of masks named like the photos")
    masks.add_argument("--mask", help="one mask for every photo")
    p.add_argument("--out", required=True, help="results, report.csv and the resume state go here")
    p.add_argument("--url", default=os.environ.get("SNEAKY_URL", "http://127.0.0.1:8000"), help=URL_HELP)
    p.add_argument("--concurrency", type=int, default=4, help="parallel uploads and downloads")
    p.add_argument("--engine", choices=["pconv", "telea", "ns"], help=ENGINE_HELP + "; default: the API's")
    p.add_argument("--priority", default="bulk", choices=["interactive", "bulk"],
                   help="bulk work is shared fairly between tenants; interactive goes first")
    _add_grow(p)
    _add_output(p)
    p.set_defaults(func=cmd_batch)

    p = command("webhooks", "the secret your webhooks are signed with (Standard Webhooks)")
    p.add_argument("action", choices=["secret", "rotate"], help="print the secret, or replace it and print the new one")
    p.add_argument("--url", default=os.environ.get("SNEAKY_URL", "http://127.0.0.1:8000"), help=URL_HELP)
    p.set_defaults(func=cmd_webhooks)

    p = command("keys", "API keys (stored hashed in Redis), one tenant each")
    p.add_argument("--redis-url", default=os.environ.get("SNEAKY_REDIS_URL", "redis://127.0.0.1:6379/0"),
                   help="the service's Redis (or SNEAKY_REDIS_URL)")
    actions = p.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key; printed once", formatter_class=_Help)
    create.add_argument("--tenant", required=True, help="whose jobs the key sees and submits")
    create.add_argument("--name", help="what the key is for")
    actions.add_parser("list", help="keys by id, tenant and state (never the secret)")
    revoke = actions.add_parser("revoke", help="stop a key from working", formatter_class=_Help)
    revoke.add_argument("key_id", help="the key's id, or its first 8 characters or more")
    p.set_defaults(func=cmd_keys)

    p = command("worker", "run a worker against the configured Redis and storage (SNEAKY_* settings), as a "
                          "container does; Celery in the foreground")
    p.add_argument("--queues", default="interactive,bulk",
                   help="interactive,bulk fills photos; webhooks delivers webhooks (run one of each)")
    p.add_argument("--concurrency", type=int, default=1, help="worker processes (one per GPU, or a share of the "
                   "cores)")
    p.set_defaults(func=cmd_worker)

    p = command("api", "run the API against the configured Redis and storage (SNEAKY_* settings), as a container "
                       "does; gunicorn in the foreground")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--processes", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=16, help="request threads per process (keep SNEAKY_MAX_WAITS "
                   "below it)")
    p.set_defaults(func=cmd_api)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
