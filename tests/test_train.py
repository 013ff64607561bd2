"""The training loop on tiny images: it learns, checkpoints, resumes, and stops cleanly."""

import json

import numpy as np
import torch

from pconv.train import main as train_main
from pconv.weights import load_model, read_metadata
from tests.helpers import eventually


def args(photos, out, steps, extra=()):
    return ["--data", str(photos), "--out", str(out), "--size", "64", "--layers", "4", "--width", "0.125",
            "--batch", "4", "--steps", str(steps), "--lr", "2e-3", "--workers", "0", "--log-every", "1",
            "--threads", "1", *extra]


def read_log(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_loss_decreases(photos, tmp_path):
    out = tmp_path / "run"
    assert train_main(args(photos, out, 60)) == 0
    losses = [r["loss"] for r in read_log(out)]
    assert len(losses) == 60
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    # each term is logged on its own
    assert {"valid", "hole", "tv", "img_s"} <= set(read_log(out)[-1])
    meta = read_metadata(out / "model.safetensors")
    assert meta["training"]["steps"] == 60 and meta["training"]["images_seen"] == 240
    assert meta["architecture"]["layers"] == 4


def test_resume_continues_from_the_checkpoint(photos, tmp_path):
    out = tmp_path / "run"
    train_main(args(photos, out, 5))
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 5 and saved["images"] == 20
    torch.manual_seed(999)  # whatever the process's RNG did since, resuming restores the run's
    model = load_model(out / "model.safetensors")
    from pconv.train import resume

    optimizer = torch.optim.Adam(model.parameters())
    step, images, _ = resume(out, model, optimizer, torch.device("cpu"))
    assert (step, images) == (5, 20)
    assert torch.equal(torch.get_rng_state(), saved["torch_rng"])
    train_main(args(photos, out, 8))  # continues to step 8, does not start over
    steps = [r["step"] for r in read_log(out)]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]


def test_finetune_phase_freezes_encoder_batchnorm(photos, tmp_path):
    out = tmp_path / "run"
    train_main(args(photos, out, 3, ["--finetune-steps", "3"]))
    phases = [r["phase"] for r in read_log(out)]
    assert phases == ["main"] * 3 + ["finetune"] * 3
    assert read_metadata(out / "model.safetensors")["training"]["phase"] == "finetune"


def test_max_minutes_stops_with_a_checkpoint(photos, tmp_path):
    out = tmp_path / "run"
    train_main(args(photos, out, 10_000, ["--max-minutes", "0.01"]))
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert 0 < state["step"] < 10_000


def test_sigterm_saves_and_stops(photos, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    run_args = args(photos, out, 100_000)
    run_args[run_args.index("--workers") + 1] = "1"  # with a data loader process, as real runs have
    proc = subprocess.Popen([sys.executable, "-m", "pconv.train", *run_args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    eventually(lambda: proc.poll() is not None or (out / "log.jsonl").exists()
               and (out / "log.jsonl").read_text().count("\n") >= 2, 60, 0.1, what="two logged steps")
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGTERM)  # the whole group, as a container stop does
    assert proc.wait(60) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] >= 2


def test_init_from_a_model_file(photos, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    train_main(args(photos, first, 3))
    train_main(args(photos, second, 1, ["--init", str(first / "model.safetensors"), "--lr", "0"]))
    a, b = load_model(first / "model.safetensors"), load_model(second / "model.safetensors")
    w = "encoder.0.conv.weight"
    assert torch.equal(a.state_dict()[w], b.state_dict()[w])  # lr 0: the weights it started from
    continued = read_metadata(second / "model.safetensors")["training"]
    assert continued["steps"] == 1 and continued["initialised_from"]["steps"] == 3
    assert continued["total_steps"] == 4 and continued["total_images_seen"] == 16


def test_the_mask_mix_is_chosen_on_the_command_line(photos, tmp_path, monkeypatch):
    from pconv import masks

    def refuse(h, w, rng):
        raise AssertionError("a generator left out of --mask-kinds was drawn")

    for kind in ("keras", "freeform", "lama"):
        monkeypatch.setitem(masks.GENERATORS, kind, refuse)
    out = tmp_path / "run"
    assert train_main(args(photos, out, 3, ["--mask-kinds", "object", "object"])) == 0
    assert json.loads((out / "args.json").read_text())["mask_kinds"] == ["object", "object"]
