"""`sneaky inpaint`: works locally, and every bad input gets a clear message and a non-zero exit."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "client.cli", "inpaint", *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(photo)
    mask = np.zeros((60, 80), np.uint8)
    mask[20:30, 30:50] = 255
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_path)
    return photo, mask_path, tmp_path


@pytest.mark.parametrize("engine", ["telea", "pconv"])
def test_inpaint_writes_result(files, engine, tiny_weights):
    photo, mask, tmp = files
    out = tmp / "out.png"
    extra = ["--weights", tiny_weights] if engine == "pconv" else []
    res = run(photo, "--mask", mask, "-o", out, "--engine", engine, *extra)
    assert res.returncode == 0, res.stderr
    assert f"80×60 RGB PNG ({engine})" in res.stdout
    before, after = np.asarray(Image.open(photo)), np.asarray(Image.open(out))
    hole = np.asarray(Image.open(mask)) >= 128
    assert (before[~hole] == after[~hole]).all() and (before[hole] != after[hole]).any()


def test_jpeg_output(files):
    photo, mask, tmp = files
    res = run(photo, "--mask", mask, "-o", tmp / "out.jpg", "--engine", "telea")
    assert res.returncode == 0, res.stderr
    assert Image.open(tmp / "out.jpg").format == "JPEG"


def test_a_jpeg_kept_as_jpeg_is_patched_and_a_quality_converts(files):
    import io

    from tests.helpers import assert_only_the_patch_changed

    photo, mask, tmp = files
    original = tmp / "photo.jpg"
    Image.open(photo).save(original, quality=85)
    res = run(original, "--mask", mask, "-o", tmp / "out.jpg", "--engine", "telea")
    assert res.returncode == 0 and "patched where the hole is" in res.stdout, res.stderr
    hole = np.asarray(Image.open(mask)) >= 128
    assert_only_the_patch_changed(original.read_bytes(), (tmp / "out.jpg").read_bytes(), hole)
    res = run(original, "--mask", mask, "-o", tmp / "small.jpg", "--engine", "telea", "--quality", "30")
    assert res.returncode == 0 and "patched" not in res.stdout, res.stderr
    assert Image.open(io.BytesIO((tmp / "small.jpg").read_bytes())).format == "JPEG"
    assert (tmp / "small.jpg").stat().st_size < (tmp / "out.jpg").stat().st_size
    res = run(photo, "--mask", mask, "-o", tmp / "o.png", "--engine", "telea", "--quality", "80")
    assert res.returncode != 0 and "quality applies to output jpeg or webp only" in res.stderr


def test_missing_photo(files):
    _, mask, tmp = files
    res = run(tmp / "nope.jpg", "--mask", mask, "-o", tmp / "o.png", "--engine", "telea")
    assert res.returncode != 0 and "photo not found" in res.stderr


def test_not_an_image(files):
    _, mask, tmp = files
    fake = tmp / "fake.jpg"
    fake.write_text("hello, I am text")
    res = run(fake, "--mask", mask, "-o", tmp / "o.png", "--engine", "telea")
    assert res.returncode != 0 and "is not an image" in res.stderr


def test_truncated_image(files):
    photo, mask, tmp = files
    cut = tmp / "cut.png"
    cut.write_bytes(photo.read_bytes()[:400])
    res = run(cut, "--mask", mask, "-o", tmp / "o.png", "--engine", "telea")
    assert res.returncode != 0 and "damaged or truncated" in res.stderr


def test_size_mismatch(files):
    photo, _, tmp = files
    small = tmp / "small.png"
    Image.new("L", (10, 10), 255).save(small)
    res = run(photo, "--mask", small, "-o", tmp / "o.png", "--engine", "telea")
    assert res.returncode != 0 and "mask is 10×10 but the photo is 80×60" in res.stderr
    assert not (tmp / "o.png").exists()


def test_unknown_output_format(files):
    photo, mask, tmp = files
    res = run(photo, "--mask", mask, "-o", tmp / "o.tiff", "--engine", "telea")
    assert res.returncode != 0 and "cannot tell the output format" in res.stderr


def test_bad_weights_file(files):
    photo, mask, tmp = files
    bogus = tmp / "w.safetensors"
    bogus.write_bytes(b"\x00" * 64)
    res = run(photo, "--mask", mask, "-o", tmp / "o.png", "--weights", bogus)
    assert res.returncode != 0 and "is not a safetensors file" in res.stderr


def test_rgba_to_jpeg_is_refused_clearly(files):
    _, mask, tmp = files
    rgba = tmp / "rgba.png"
    Image.new("RGBA", (80, 60), (10, 20, 30, 128)).save(rgba)
    res = run(rgba, "--mask", mask, "-o", tmp / "o.jpg", "--engine", "telea")
    assert res.returncode != 0 and "transparency, which JPEG cannot hold" in res.stderr
    assert not (tmp / "o.jpg").exists()


def test_grow_option(files):
    photo, mask, tmp = files
    res = run(photo, "--mask", mask, "-o", tmp / "grown.png", "--engine", "telea", "--grow", "4")
    assert res.returncode == 0, res.stderr
    before, after = np.asarray(Image.open(photo)), np.asarray(Image.open(tmp / "grown.png"))
    changed = (before != after).any(-1)
    assert changed[16:20, 34:46].any() and not changed[:15].any()  # above the mask, within 4 px and beyond
    bad = run(photo, "--mask", mask, "-o", tmp / "x.png", "--grow", "100")
    assert bad.returncode != 0 and "between 0 and 64" in bad.stderr


def test_every_option_of_every_command_says_what_it_does_and_its_default():
    import argparse

    from client.cli import build_parser

    def options(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from options(sub, [*path, name])
            elif not isinstance(action, argparse._HelpAction):
                yield " ".join(path), action

    found = list(options(build_parser(), []))
    assert len(found) > 40
    assert [(path, action.dest) for path, action in found if not action.help] == []
    up = subprocess.run([sys.executable, "-m", "client.cli", "up", "--help"], capture_output=True, text=True)
    assert "(default: 8000)" in up.stdout and "(default: 127.0.0.1)" in up.stdout and "(default: 1)" in up.stdout


def test_make_up_takes_port_host_and_workers():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    res = subprocess.run(["make", "-n", "-C", str(root), "up", "PORT=8100", "HOST=0.0.0.0", "WORKERS=3"],
                         capture_output=True, text=True, timeout=60)
    line = [row for row in res.stdout.splitlines() if "sneaky up" in row][-1]
    assert "--host 0.0.0.0" in line and "--port 8100" in line and "--workers 3" in line
