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


def configure(weights: str | None, flip_average: bool = True) -> None:
    """Set before the first ``get``: engines already loaded keep their settings."""
    global _weights, _flip_average
    _weights = weights or None
    _flip_average = flip_average


def get(engine: str) -> Inpainter:
    """The process's Inpainter for ``engine``, loaded on first use."""
    with _lock:
        if engine not in _loaded:
            from pconv.inpaint import Inpainter

            try:
                weights = _weights if engine == "pconv" else None
                _loaded[engine] = Inpainter.load(engine, weights=weights, flip_average=_flip_average)
            except (FileNotFoundError, ValueError) as exc:
                raise SneakyError(f"engine {engine} is not available on this worker: {exc}",
                                  "engine_unavailable") from exc
            log.info("engine %s loaded", engine)
        return _loaded[engine]
