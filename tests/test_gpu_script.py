"""scripts/gpu_train.sh, the GPU training run, exercised on the CPU: it packs the photos and a model to
continue from, trains from them, and leaves the model (not the checkpoint) for the trip back."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

from pconv.weights import read_metadata

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_script_packs_and_trains_on_cpu(photos, tiny_weights, tmp_path):
    gpu, out = tmp_path / "gpu", tmp_path / "out"
    env = {**os.environ, "GPU_DIR": str(gpu), "OUT": str(out), "PYTHON": sys.executable, "DEVICE": "cpu",
           "TRAIN_ARGS": "--size 128 --width 0.125 --batch 2 --workers 0 --steps 3 --threads 1 --log-every 1"}
    script = str(ROOT / "scripts" / "gpu_train.sh")
    subprocess.run(["bash", script, "pack", str(photos), str(tiny_weights)], env=env, check=True, cwd=ROOT,
                   capture_output=True)
    with tarfile.open(gpu / "photos.tar") as packed:
        assert sorted(Path(n).name for n in packed.getnames() if n.endswith(".jpg")) == sorted(
            p.name for p in photos.iterdir())
    assert (gpu / "init.safetensors").read_bytes() == tiny_weights.read_bytes()

    subprocess.run(["bash", script, "run", "5"], env=env, check=True, cwd=ROOT, capture_output=True)
    run = out / "run"
    meta = read_metadata(run / "model.safetensors")["training"]
    assert meta["steps"] == 3 and meta["images_seen"] == 6
    assert meta["initialised_from"]["file"] == "init.safetensors"
    assert meta["loss_weights"]["gradient"] == 2.0  # the loss the ablation chose
    assert not (run / "checkpoint.pt").exists()  # too big for the trip back
