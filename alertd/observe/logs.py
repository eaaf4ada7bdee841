"""Structured JSON logs. Code that works on an alert, a version or a delivery wraps the work
in ``log_context(...)``; every line logged inside it, by any logger, carries those ids."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

_ids: ContextVar[dict[str, Any]] = ContextVar("alertd_log_ids", default={})  # noqa: B039 - never mutated, only replaced

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Add ids (``alert_id=3, version_id=7``) to every log line until the block ends."""
    token = _ids.set({**_ids.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _ids.reset(token)


def current_ids() -> dict[str, Any]:
    return dict(_ids.get())


class ContextIds(logging.Filter):
    """Copies the ids of the current log_context onto each record the handler formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _ids.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "process": "pid"},
        json_ensure_ascii=False,
    )


def configure_logging(
    log_format: str = "json", level: int | str = logging.INFO, stream: IO[str] | None = None
) -> None:
    """One handler on the root logger: JSON lines (the default) or plain text for a terminal."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        json_formatter() if log_format != "text" else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(ContextIds())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
