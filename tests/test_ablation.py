"""The loss ablation tool, on tiny photos: every variant trains, is evaluated, and a rerun reuses both."""

import numpy as np
from PIL import Image

from pconv.ablation import main as ablation_main


def test_ablation_trains_evaluates_and_resumes(photos, tmp_path, capsys):
    folder = tmp_path / "eval"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (260, 300, 3), dtype=np.uint8)).save(folder / f"e{i}.png")
    runs, doc = tmp_path / "runs", tmp_path / "model.md"
    argv = ["--data", str(photos), "--photos", str(folder), "--runs", str(runs), "--variants", "l1", "random-vgg",
            "--steps", "2", "--size", "64", "--layers", "4", "--width", "0.125", "--batch", "2",
            "--markdown", str(doc), "--plot", str(tmp_path / "ablation.png")]
    assert ablation_main(argv) == 0
    printed = capsys.readouterr().out
    rows = {line.split("|")[1].split(":")[0].strip() for line in printed.splitlines() if line.startswith("| ")}
    assert {"l1", "random-vgg", "OpenCV telea", "OpenCV ns"} <= rows
    assert "| 2 |" in next(line for line in printed.splitlines() if line.startswith("| l1:"))
    assert (runs / "random-vgg" / "model.safetensors").exists()  # trained for the l1 run's wall time
    assert "## Loss ablation" in doc.read_text() and Image.open(tmp_path / "ablation.png").size[0] > 400

    trained = {p: p.stat().st_mtime_ns for p in runs.rglob("model.safetensors")}
    assert ablation_main(argv) == 0  # nothing left to train or evaluate
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("model.safetensors")} == trained
    assert capsys.readouterr().out.count("| l1:") == 1


def test_ablation_continues_every_variant_from_the_same_weights(photos, tmp_path, tiny_weights, capsys):
    folder = tmp_path / "eval"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (260, 300, 3), dtype=np.uint8)).save(folder / "e.png")
    runs, doc = tmp_path / "runs", tmp_path / "model.md"
    argv = ["--data", str(photos), "--photos", str(folder), "--runs", str(runs), "--init", str(tiny_weights),
            "--variants", "gradient", "gradient+adversarial", "--steps", "2", "--size", "128", "--layers", "7",
            "--width", "0.125", "--batch", "2", "--finetune", "--markdown", str(doc), "--title", "Adversarial ablation"]
    assert ablation_main(argv) == 0
    from pconv.weights import read_metadata

    for name in ("gradient", "gradient-adversarial"):
        training = read_metadata(runs / name / "model.safetensors")["training"]
        assert training["initialised_from"]["file"] == "tiny.safetensors" and training["steps"] == 2
        assert training["phase"] == "finetune"
    assert read_metadata(runs / "gradient-adversarial" / "model.safetensors")["training"]["loss_weights"][
        "adversarial"] == 0.01
    text = doc.read_text()
    assert "## Adversarial ablation" in text and "continuing tiny.safetensors" in text
