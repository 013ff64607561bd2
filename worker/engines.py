"""Engines are loaded once per worker process, after the fork: CUDA must never be
initialised in the parent, whose children would inherit a broken context."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from core.errors import SneakyError

if TYPE_CHECKING:  # torch loads with the first engine, in the worker process, not at import
    from pconv.inpaint import Inpainter

log = logging.getLogger("sneaky.worker")

_loaded: dict[str, Inpainter] = {}
_lock = threading.Lock()
_weights: str | None = None
_flip_average = True
_threads = 0
_runtime = "auto"
_stage_threads: int | None = None


def configure(weights: str | None, flip_average: bool = True, threads: int = 0, runtime: str = "auto",
              stage_threads: int | None = None) -> None:
    """Set before the first ``get``: engines already loaded keep their settings. ``threads``: the
    CPU threads each engine may use in this process (0: each library's own choice). ``runtime``: the
    network's runtime on CPU (``pconv/runtime.py``). ``stage_threads``: see ``stage_threads()``."""
    global _weights, _flip_average, _threads, _runtime, _stage_threads
    _stage_threads = stage_threads
    _weights = weights or None
    _flip_average = flip_average
    _threads = threads
    _runtime = runtime


def stage_threads() -> int:
    """Threads for a group's reading and writing stages (worker/pipeline.py), unless configured: a CUDA
    engine leaves the process's cores to them; on CPU the engine needs them, and the stages run one job
    after another."""
    import sys

    if _stage_threads is not None:
        return max(1, _stage_threads)
    torch = sys.modules.get("torch")  # loaded with the first model engine only
    if torch is None or not torch.cuda.is_available():
        return 1
    return max(1, _threads)


def threads_per_process(cores: int, processes: int, setting: int = 0) -> int:
    """The machine's cores shared among the pool's processes: torch would otherwise start a thread per
    core in every process, and two processes on two cores run a forward pass 2.6× slower
    (issue 18's measurement: 1.31 s against 0.50 s with one thread each)."""
    return setting if setting > 0 else max(1, cores // max(1, processes))


def get(engine: str) -> Inpainter:
    """The process's Inpainter for ``engine``, loaded on first use."""
    with _lock:
        if engine not in _loaded:
            from pconv.inpaint import Inpainter

            if _threads:
                import cv2
                import torch

                torch.set_num_threads(_threads)
                cv2.setNumThreads(_threads)
            try:
                weights = _weights if engine == "pconv" else None
                _loaded[engine] = Inpainter.load(engine, weights=weights, flip_average=_flip_average,
                                                 runtime=_runtime, threads=_threads)
            except (FileNotFoundError, ValueError) as exc:
                raise SneakyError(f"engine {engine} is not available on this worker: {exc}",
                                  "engine_unavailable") from exc
            log.info("engine %s loaded", engine)
        return _loaded[engine]
