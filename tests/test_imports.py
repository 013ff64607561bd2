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


FORBIDDEN = {  # docs/architecture.md, "what may import what"
    "pconv": ("api", "core", "worker", "client", "flask", "apiflask", "celery", "redis", "boto3"),
    "core": ("api", "worker", "flask", "apiflask", "torch"),
    "api": ("worker", "torch"),
    "worker": ("api", "flask", "apiflask"),
    "client": ("api", "worker"),
}


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_parts_import_only_what_the_architecture_allows(part):
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = []
    for path in (root / part).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            found += [f"{path.relative_to(root)}: {name}" for name in names
                      if name.split(".")[0] in FORBIDDEN[part]]
    assert not found, found
