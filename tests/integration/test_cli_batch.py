"""`sneaky batch` against a real stack: killed halfway, rerun, every photo done exactly once."""

import csv
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import eventually, frozen_workers

BIN = Path(sys.executable).parent


def make_folder(tmp_path, n, side=48):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    height = side * 5 // 6
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (height, side, 3), dtype=np.uint8)).save(photos / f"p{i:03d}.png")
        m = np.zeros((height, side), np.uint8)
        m[height // 8 : height * 5 // 8, (i % 30) * side // 48 : (i % 30 + 20) * side // 48] = 255
        Image.fromarray(m).save(masks / f"p{i:03d}.png")
    (photos / "lonely.png").write_bytes((photos / "p000.png").read_bytes())  # no mask of its name
    return photos, masks


def cmd(stack, photos, masks, out):
    return [str(BIN / "sneaky"), "batch", str(photos), "--masks", str(masks), "--out", str(out),
            "--url", stack.api_url, "--concurrency", "2"]


def test_batch_cli_resumes_after_a_kill(stack, tmp_path):
    photos, masks = make_folder(tmp_path, 40)
    out = tmp_path / "out"
    jobs_before = len(stack.redis().keys("sneaky:job:*"))
    # the workers frozen, so the kill lands mid-run whatever the machine's load: every photo uploaded and
    # submitted, none finished
    with frozen_workers(stack):
        first = subprocess.Popen(cmd(stack, photos, masks, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        eventually(lambda: len(stack.redis().keys("sneaky:job:*")) - jobs_before >= 40 or first.poll() is not None,
                   120, what="the first run to submit its 40 photos")
        assert first.poll() is None, "the first run ended by itself"
        first.send_signal(signal.SIGKILL)  # mid-run, no chance to tidy up
        first.wait()
    assert not list(out.glob("p*.png"))
    second = subprocess.run(cmd(stack, photos, masks, out), capture_output=True, text=True, timeout=300)
    assert second.returncode == 1, second.stdout + second.stderr  # the photo without a mask
    assert "no mask for lonely.png" in second.stdout and "40 done, 0 failed, 1 without a mask" in second.stdout
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert len(rows) == 41
    assert sum(r["status"] == "succeeded" for r in rows) == 40 and rows[-1]["status"] == "no_mask"
    for i in range(40):
        before = np.asarray(Image.open(photos / f"p{i:03d}.png"))
        after = np.asarray(Image.open(out / f"p{i:03d}.png"))
        hole = np.asarray(Image.open(masks / f"p{i:03d}.png")) >= 128
        assert (before[~hole] == after[~hole]).all()
    # every photo was processed exactly once: 40 jobs, none resubmitted by the rerun
    assert len(stack.redis().keys("sneaky:job:*")) - jobs_before == 40
    third = subprocess.run(cmd(stack, photos, masks, out), capture_output=True, text=True, timeout=120)
    assert "40 done" in third.stdout and len(stack.redis().keys("sneaky:job:*")) - jobs_before == 40


def test_ctrl_c_stops_cleanly_says_how_to_go_on_and_writes_the_report(stack, tmp_path):
    photos, masks = make_folder(tmp_path, 12)
    out = tmp_path / "out"
    with frozen_workers(stack):  # nothing can finish: the interrupt lands mid-run
        run = subprocess.Popen(cmd(stack, photos, masks, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        eventually(lambda: (out / ".sneaky-batch.json").exists() and "job_id" in
                   (out / ".sneaky-batch.json").read_text() or run.poll() is not None, 120,
                   what="the run to submit its photos")
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "stopped; 0 of 12 done" in stderr and "Run the same command again" in stderr
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert len(rows) == 13 and {r["status"] for r in rows[:-1]} <= {"queued", "running", "not_submitted"}
    again = subprocess.run(cmd(stack, photos, masks, out), capture_output=True, text=True, timeout=300)
    assert "12 done, 0 failed" in again.stdout, again.stdout + again.stderr


def test_a_refused_batch_lists_every_bad_photo(stack, tmp_path):
    photos, masks = make_folder(tmp_path, 3)
    (photos / "p001.png").write_bytes(b"not a picture at all")
    Image.new("L", (10, 10)).save(masks / "p002.png")  # the wrong size for its photo
    out = tmp_path / "out"
    res = subprocess.run(cmd(stack, photos, masks, out), capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert any("invalid_items" in line and "2 of 3" in line for line in lines), res.stderr
    assert any(line.startswith("p001.png") and "invalid_image" in line for line in lines), res.stderr
    assert any(line.startswith("p002.png") and "mask_size_mismatch" in line for line in lines), res.stderr
    (photos / "p001.png").write_bytes((photos / "p000.png").read_bytes())  # fixed: the next run sends it as it is
    (masks / "p002.png").write_bytes((masks / "p000.png").read_bytes())
    fixed = subprocess.run(cmd(stack, photos, masks, out), capture_output=True, text=True, timeout=300)
    assert "3 done, 0 failed" in fixed.stdout, fixed.stdout + fixed.stderr
