"""The API must not import torch, and a worker's parent process must not either (CUDA would be
initialised before the fork)."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["api.wsgi", "worker.app", "worker.pipeline", "core.photos", "pconv.images",
                                    "pconv.masks", "pconv.inpaint", "pconv.results", "pconv.jpegpatch"])
def test_no_torch_on_import(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


def test_the_classical_engines_never_load_torch(tmp_path):
    """Telea and Navier-Stokes, in the library and in `sneaky inpaint`: torch alone is some 680 MB and a second."""
    from PIL import Image

    Image.new("RGB", (64, 48), "grey").save(tmp_path / "p.jpg")
    Image.new("L", (64, 48), 255).save(tmp_path / "m.png")
    code = ("import sys; from pconv.inpaint import Inpainter; from PIL import Image; "
            f"Inpainter.load('ns').inpaint(Image.open('{tmp_path / 'p.jpg'}'), Image.open('{tmp_path / 'm.png'}')); "
            "from client.cli import main; main(['inpaint', sys.argv[1], '--mask', sys.argv[2], '-o', sys.argv[3], "
            "'--engine', 'telea']); print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.jpg"), str(tmp_path / "m.png"),
                          str(tmp_path / "o.jpg")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "False" and (tmp_path / "o.jpg").is_file()


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


def _service_sources():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for part in ("api", "core", "worker"):
        for path in sorted((root / part).rglob("*.py")):
            yield path.relative_to(root), path.read_text()


def test_no_job_field_is_read_by_string_key_outside_the_job_type():
    """A job is a ``core.jobs.Job``: its fields are attributes, and only core/jobs.py knows the
    record's keys (issue 15)."""
    import re

    lookup = re.compile(r"""\b(?:job|j|w\.job|stranded|created|done)\s*(?:\[\s*["']|\.get\(\s*["'])""")
    offenders = [f"{path}:{n}: {line.strip()}" for path, text in _service_sources() if str(path) != "core/jobs.py"
                 for n, line in enumerate(text.splitlines(), 1) if lookup.search(line)]
    assert not offenders, "\n".join(offenders)


def test_no_blueprint_imports_another():
    """Blueprints share code through core/ (core/submission.py) or api's own helpers, never through
    each other, so no two routes' modules import each other."""
    import ast

    blueprints = {path.stem for path, text in _service_sources()
                  if str(path).startswith("api/") and "APIBlueprint(" in text}
    assert {"jobs", "batches", "uploads", "health", "web"} <= blueprints
    found = []
    for path, text in _service_sources():
        if not str(path).startswith("api/") or path.stem not in blueprints:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                modules = [node.module] if node.module else [a.name for a in node.names]
                found += [f"{path}: {m}" for m in modules if m and m.split(".")[0] in blueprints]
    assert not found, found
