"""The prepared GPU check runs end to end on the CPU, so its first run on a lent GPU cannot fail on a typo."""

import json

from bench import gpu_check


def test_gpu_check_runs_on_the_cpu_and_writes_its_report(tiny_weights, tmp_path):
    doc = tmp_path / "benchmarks.md"
    assert gpu_check.main(["--device", "cpu", "--weights", str(tiny_weights), "--batches", "1", "2", "--size", "128",
                           "--repeats", "1", "--out", str(tmp_path / "out"), "--write", str(doc)]) == 0
    report = json.loads((tmp_path / "out" / "gpu-check.json").read_text())
    assert report["agreement"]["max_levels"] == 0  # CPU against CPU: the comparison itself is exact
    assert [row["batch"] for row in report["throughput"]] == [1, 2]
    assert all(row["crops_per_s"] > 0 for row in report["throughput"])
    assert "## GPU check" in doc.read_text() and "| 2 |" in (tmp_path / "out" / "gpu-check.md").read_text()


def test_the_prepared_script_runs_the_check(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DEVICE": "cpu", "OUT": str(tmp_path), "PYTHON": sys.executable,
           "CHECK_ARGS": "--batches 1 --size 128 --repeats 1"}
    done = subprocess.run([str(root / "scripts" / "gpu_train.sh"), "check"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "check" / "gpu-check.json").is_file() and "crops/s" in done.stdout
