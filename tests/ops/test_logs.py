"""JSON log lines: one object per record, extras as fields, uvicorn's access parts named."""

from __future__ import annotations

import io
import logging

import orjson

from fyp.ops.logs import JsonFormatter, log_config


def capture(name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_a_record_is_one_json_object_with_its_extras_and_exception() -> None:
    log, out = capture("fyp.test_logs")
    log.info("trained %s", "v1", extra={"version": "v1", "events": 12})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, second = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert first["msg"] == "trained v1" and first["level"] == "INFO"
    assert first["logger"] == "fyp.test_logs" and isinstance(first["pid"], int)
    assert first["version"] == "v1" and first["events"] == 12
    assert first["ts"].endswith("+00:00")
    assert "args" not in first and "exc" not in first
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exc"]


def test_uvicorn_access_records_get_named_fields() -> None:
    log, out = capture("uvicorn.access")
    log.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/v1/videos/v1", "1.1", 200)
    line = orjson.loads(out.getvalue())
    assert (line["method"], line["path"], line["status"]) == ("GET", "/v1/videos/v1", 200)
    assert line["client"] == "127.0.0.1:5000"


def test_log_config_switches_every_logger_to_json() -> None:
    cfg = log_config("json", "DEBUG")
    assert cfg["formatters"]["main"] == {"()": JsonFormatter}
    assert {"uvicorn", "uvicorn.access", "fyp"} <= set(cfg["loggers"])
    assert cfg["loggers"]["fyp"]["level"] == "DEBUG"
    assert "()" not in log_config("text")["formatters"]["main"]
