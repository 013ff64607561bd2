import json

import numpy as np
from PIL import Image

from pconv.evaluate import main as evaluate_main
from pconv.evaluate import score


def test_evaluation_on_three_tiny_photos(tmp_path, tiny_weights, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "eval"
    folder.mkdir()
    for i, shape in enumerate([(70, 90), (71, 90), (150, 200)]):  # the last wider than the window below
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    out = tmp_path / "means.json"
    code = evaluate_main(["--photos", str(folder), "--weights", str(tiny_weights), "--crop", "0", "--single-pass",
                          "--window", "128",
                          "--json", str(out), "--plot", str(tmp_path / "plot.png"), "--grid", str(tmp_path / "grid.png")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "3 photos" in printed and "| (0.5, 0.6] |" in printed
    for engine in ("pconv", "telea", "ns", "pconv-1pass", "pconv-w128"):
        assert engine in printed
    means = json.loads(out.read_text())["means"]
    assert set(means) == {"pconv", "telea", "ns", "pconv-1pass", "pconv-w128"} and len(means["telea"]) == 6
    assert means["pconv"] != means["pconv-1pass"]  # flip averaging changes the fills
    assert means["pconv"] != means["pconv-w128"]  # large holes filled at reduced scale
    assert all(0 < m["ssim"] <= 1 and m["psnr"] > 0 for by in means.values() for m in by.values())
    assert Image.open(tmp_path / "plot.png").size[0] > 500 and Image.open(tmp_path / "grid.png").size[0] > 500


def test_score_hole_metrics_ignore_the_outside():
    truth = np.zeros((32, 32, 3), np.uint8)
    hole = np.zeros((32, 32), bool)
    hole[8:16, 8:16] = True
    filled = truth.copy()
    filled[hole] = 10
    s = score(truth, filled, hole)
    assert abs(s["hole_l1"] - 10 / 255) < 1e-9
    assert abs(s["l1"] - 10 / 255 * hole.mean()) < 1e-9
    assert s["hole_psnr"] < s["psnr"]
