"""Structured logs: one JSON object per line, for every logger including uvicorn's.

``log_config`` returns a ``logging.config.dictConfig`` mapping; ``fyp serve`` hands it to
uvicorn, which applies it in every worker process. Anything passed as ``extra={...}`` to a log
call becomes a field of the object, so ``log.info("trained", extra={"version": v})`` is
searchable by ``version`` in a log store.
"""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

# Attributes every LogRecord has; whatever else is on a record came from ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "color_message", "taskName"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        # uvicorn's access records carry their parts as args: give them names.
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, _http, status = args
            out.update(client=client, method=method, path=path, status=status)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def log_config(fmt: Literal["text", "json"], level: str = "INFO") -> dict[str, Any]:
    """A dictConfig for fyp's and uvicorn's loggers, in text or JSON lines on stderr."""
    if fmt == "json":
        formatter: dict[str, Any] = {"()": JsonFormatter}
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "loggers": {
            "uvicorn": {"handlers": ["main"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["main"], "level": level, "propagate": False},
            "fyp": {"handlers": ["main"], "level": level, "propagate": False},
        },
        "root": {"handlers": ["main"], "level": "WARNING"},
    }


def configure_logging(fmt: Literal["text", "json"], level: str = "INFO") -> None:
    logging.config.dictConfig(log_config(fmt, level))
