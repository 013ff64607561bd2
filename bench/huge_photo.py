"""A 144-megapixel JPEG with a small hole: peak memory (RSS) and time of the API's check and of
the worker's job, each measured in a fresh process.

    python bench/huge_photo.py [--side 12000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pconv.report import machine_description, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"

API_CHECK = """
import json, sys, time
from core.photos import inspect_pair
image, mask = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
before = PEAK
start = time.perf_counter()
inspect_pair(image, mask, 200_000_000)
print(json.dumps({"seconds": time.perf_counter() - start, "peak_kb": PEAK,
                  "inputs_kb": (len(image) + len(mask)) // 1024, "before_kb": before}))
""".replace("PEAK", PEAK)

WORKER_JOB = """
import io, json, sys, time, warnings
warnings.simplefilter("ignore")
from pconv.inpaint import Inpainter
from pconv.jpegpatch import decode_window
from pconv.results import patches, write_result
from worker.pipeline import _check_as_accepted, _decode_photo, _open_inputs
from core.jobs import Job
from core.photos import inspect
engine, output = sys.argv[3], sys.argv[4]
inpainter = Inpainter.load(engine, allow_random=True)
image_bytes, mask_bytes = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
base = PEAK
start = time.perf_counter()
# as the worker does it (worker/pipeline.py _load and _store): the stored files checked again, the hole planned
# into crops and let go, then only the window around them decoded where the JPEG will be patched
accepted = inspect(image_bytes, 200_000_000).as_input()  # what the API recorded
_check_as_accepted(Job.new("t", engine, "bulk", accepted), image_bytes, mask_bytes, 200_000_000)
photo, mask_size, hole, fmt = _open_inputs(image_bytes, mask_bytes, 200_000_000)
plan = inpainter.plan(hole)
del hole
window = decode_window(image_bytes, plan.bounds()) if patches(fmt, output, None) else None
if window is not None:
    image, plan = window.image, plan.within(window.box)
else:
    image = _decode_photo(photo, mask_size, fmt)
[result] = inpainter.inpaint_many([(image, plan)], in_place=True)
written = write_result(image_bytes, fmt, result, plan.hole, output, None, window)
print(json.dumps({"seconds": time.perf_counter() - start, "peak_kb": PEAK, "before_kb": base,
                  "patched": written.patched}))
""".replace("PEAK", PEAK)


# jpegtran's own peak: spawned from a small interpreter, whose children's maxrss is then jpegtran's (a child
# of the worker would report the worker's size, copied at the fork)
JPEGTRAN_PEAK = """
import resource, shutil, subprocess, sys
subprocess.run([shutil.which("jpegtran"), "-crop", "600x400+5800+5800", "-copy", "none", "-outfile", sys.argv[2],
                sys.argv[1]], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def make_inputs(side: int, folder: Path) -> tuple[Path, Path]:
    y = np.linspace(0, 255, side, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, side, dtype=np.float32)[None, :]
    image = np.empty((side, side, 3), np.uint8)
    image[..., 0] = (x + 0 * y).astype(np.uint8)
    image[..., 1] = (y + 0 * x).astype(np.uint8)
    image[..., 2] = ((x + y) / 2).astype(np.uint8)
    photo = folder / "huge.jpg"
    Image.fromarray(image).save(photo, quality=90)
    del image
    mask = np.zeros((side, side), np.uint8)
    c = side // 2
    mask[c - 100 : c + 100, c - 150 : c + 150] = 255
    mask_path = folder / "huge-mask.png"
    Image.fromarray(mask).save(mask_path)
    return photo, mask_path


def run(code: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=900)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--side", type=int, default=12000)
    p.add_argument("--engines", nargs="+", default=["telea", "pconv"])
    p.add_argument("--write")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        photo, mask = make_inputs(args.side, Path(tmp))
        size_mb = photo.stat().st_size / 1e6
        api = run(API_CHECK, str(photo), str(mask))
        rows = [f"| API: header checks of photo and mask | {api['seconds'] * 1000:.0f} ms | "
                f"{api['peak_kb'] / 1024:.0f} MB (of which inputs {api['inputs_kb'] / 1024:.0f} MB, "
                f"interpreter {api['before_kb'] / 1024:.0f} MB) | – |"]
        spawned = subprocess.run([sys.executable, "-c", JPEGTRAN_PEAK, str(photo), str(Path(tmp) / "cut.jpg")],
                                 capture_output=True, text=True, check=True)
        jpegtran_mb = int(spawned.stdout.strip()) / 1024
        for engine in args.engines:
            for output, how in (("png", "decode whole, fill, encode PNG"), ("same", "window, fill, patch the JPEG")):
                job = run(WORKER_JOB, str(photo), str(mask), engine, output)
                child = f"{jpegtran_mb:.0f} MB" if job["patched"] else "–"
                rows.append(f"| worker, {engine}: {how} | {job['seconds']:.1f} s | {job['peak_kb'] / 1024:.0f} MB "
                            f"(after loading: {job['before_kb'] / 1024:.0f} MB; the job's own: "
                            f"{(job['peak_kb'] - job['before_kb']) / 1024:.0f} MB) | {child} |")
                print(rows[-1], flush=True)
    text = "\n".join(["| step | time | peak RSS | jpegtran's peak (a child process) |", "| --- | --- | --- | --- |",
                      *rows])
    print("\n" + text)
    if args.write:
        body = (f"{machine_description()}; a {args.side}×{args.side} ({args.side ** 2 / 1e6:.0f} MP) JPEG of "
                f"{size_mb:.0f} MB with a 300×200 hole; each step in a fresh process.\n\n{text}\n\n"
                "A JPEG kept as JPEG (`output=same`) is patched: only the MCUs around the hole's crops are "
                "decoded (`jpegtran -crop`, in a child process that holds the file's coefficients) and coded anew "
                "(`jpegtran -drop`); asked for as PNG, the whole photo is decoded and encoded.\n\n"
                "Goals: worker peak ≤ 1.5 GB (issue 9), ≤ 400 MB for a patched JPEG (issue 19); the API never "
                "decodes pixel data (its peak is the interpreter plus the uploaded bytes).")
        write_section(Path(args.write), "huge photos", body, "python bench/huge_photo.py --write docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
