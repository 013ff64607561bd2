"""Logging for every process: JSON lines (one event per line, with job id, tenant, batch id
and timings as fields) for machines, or readable text for a person at ``sneaky up``."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

CELERY_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_") and v is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        return super().format(record) + (f"  [{extras}]" if extras else "")


def configure_logging(fmt: str | None = None, level: str | None = None) -> None:
    """Root logger to stderr in ``SNEAKY_LOG_FORMAT`` (json, the default, or text)."""
    fmt = fmt or os.environ.get("SNEAKY_LOG_FORMAT", "json")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("SNEAKY_LOG_LEVEL", "INFO"))
    # Celery's line per task received and per task finished formats the task's arguments and result
    # (a few ms of worker CPU per job, docs/benchmarks.md); the pipeline logs each job's end once
    for chatty in CELERY_TASK_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.WARNING)
