"""scripts/gpu_train.sh, the GPU training run, exercised end to end on the CPU: it packs the photos and a
few evaluation photos, trains from the weights it is given (the tracked file on the GPU machine, no copy),
evaluates the result and its start, and leaves only what can come back from the device machine."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from safetensors import safe_open

from pconv.weights import read_metadata

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "scripts" / "gpu_train.sh")
TRAVEL_LIMIT = 64 * 2**20  # the device tool's limit on what travels (tracked files plus carried paths)
RETURN_FILES, RETURN_FILE_BYTES = 8, 16 * 2**20  # and on what comes back from $OUT


def script_env(tmp_path, **extra):
    return {**os.environ, "GPU_DIR": str(tmp_path / "gpu"), "OUT": str(tmp_path / "out"), "PYTHON": sys.executable,
            "DEVICE": "cpu", "EVAL_PHOTOS": "2", **extra}


def test_gpu_script_packs_trains_and_evaluates_on_cpu(photos, tiny_weights, tmp_path):
    env = script_env(tmp_path, INIT=str(tiny_weights), FINETUNE_MINUTES="5",
                     TRAIN_ARGS="--size 128 --width 0.125 --batch 2 --workers 0 --steps 3 --threads 1 --log-every 1")
    packed = subprocess.run(["bash", SCRIPT, "pack", str(photos), str(photos)], env=env, cwd=ROOT,
                            capture_output=True, text=True)
    assert packed.returncode == 0, packed.stderr
    gpu = tmp_path / "gpu"
    with tarfile.open(gpu / "photos.tar") as tar:
        assert sorted(Path(n).name for n in tar.getnames() if n.endswith(".jpg")) == sorted(
            p.name for p in photos.iterdir())
    assert len(list((gpu / "eval").iterdir())) == 2
    assert not list(gpu.glob("*.safetensors"))  # the weights travel once, as the tracked file

    ran = subprocess.run(["bash", SCRIPT, "run", "5"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    run = tmp_path / "out" / "run"
    meta = read_metadata(run / "model.safetensors")["training"]
    assert meta["steps"] == 3 and meta["images_seen"] == 6
    assert meta["phase"] == "finetune"  # FINETUNE_MINUTES covered the whole (short) run
    assert meta["initialised_from"]["file"] == "tiny.safetensors"
    assert meta["loss_weights"]["gradient"] == 2.0  # the loss the ablation chose
    with safe_open(run / "model.safetensors", "pt") as f:
        assert f.get_tensor("encoder.0.conv.weight").dtype.itemsize == 2  # float16: the full model stays < 16 MiB
    for name in ("eval.json", "eval-start.json"):
        means = json.loads((run / name).read_text())["means"]["pconv"]
        assert len(means) == 6 + 3 and all(m["hole_psnr"] > 5 for m in means.values())  # strokes, objects
    assert [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert "stopped at step 3" in (run / "train.log").read_text()
    assert not (run / "checkpoint.pt").exists()  # too big for the trip back
    back = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(back) <= RETURN_FILES and all(p.stat().st_size <= RETURN_FILE_BYTES for p in back)


def test_gpu_pack_refuses_what_would_not_travel(photos, tmp_path):
    env = script_env(tmp_path, TRAVEL_LIMIT_BYTES="1000000")  # less than the tracked files alone
    packed = subprocess.run(["bash", SCRIPT, "pack", str(photos), str(photos)], env=env, cwd=ROOT,
                            capture_output=True, text=True)
    assert packed.returncode == 3 and "too big to travel" in packed.stderr


def test_gpu_pack_default_limit_is_the_device_tools_with_headroom():
    script = Path(SCRIPT).read_text()
    assert f"TRAVEL_LIMIT_BYTES:-{TRAVEL_LIMIT}" in script and f"HEADROOM_BYTES:-{4 * 2**20}" in script


@pytest.mark.skipif(not (ROOT.parent / "shared" / "datasets" / "photos" / "train").is_dir(),
                    reason="the shared training photos are not beside this clone")
def test_full_training_pack_travels(tmp_path):
    """The real pack (every training photo, the evaluation photos) with the tracked files fits the limit
    with 4 MiB to spare (the script refuses otherwise), and the pack alone stays well under it."""
    packed = subprocess.run(["bash", SCRIPT, "pack"], env=script_env(tmp_path, EVAL_PHOTOS="12"), cwd=ROOT,
                            capture_output=True, text=True)
    assert packed.returncode == 0, packed.stderr
    size = sum(p.stat().st_size for p in (tmp_path / "gpu").rglob("*") if p.is_file())
    assert size < 48 * 2**20, size


def test_gpu_script_trains_from_scratch_and_splits_a_large_model(photos, tmp_path):
    """INIT=none WIDTH=…: the full-width comparison; a model over SPLIT_BYTES comes back in parts."""
    env = script_env(tmp_path, INIT="none", WIDTH="0.125", SPLIT_BYTES="500000",
                     TRAIN_ARGS="--size 128 --batch 2 --workers 0 --steps 2 --threads 1 --log-every 1")
    assert subprocess.run(["bash", SCRIPT, "pack", str(photos), str(photos)], env=env, cwd=ROOT,
                          capture_output=True).returncode == 0
    ran = subprocess.run(["bash", SCRIPT, "run", "5"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    run = tmp_path / "out" / "run"
    parts = sorted(run.glob("model.safetensors.part-*"))
    assert len(parts) >= 2 and not (run / "model.safetensors").exists() and not (run / "eval-start.json").exists()
    joined = tmp_path / "model.safetensors"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    meta = read_metadata(joined)
    assert meta["architecture"]["width"] == 0.125 and "initialised_from" not in meta["training"]
    assert meta["training"]["steps"] == 2
    back = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(back) <= RETURN_FILES
