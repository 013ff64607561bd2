"""The API must not import torch, and a worker's parent process must not either (CUDA would be
initialised before the fork)."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["api.wsgi", "worker.app", "core.photos", "pconv.images", "pconv.masks"])
def test_no_torch_on_import(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
