"""Row readers for JSONL and CSV files, yielding dicts the catalog and ingest validate."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

# CSV cells are text: list-valued columns are written 'a|b|c', empty cells mean "not given".
LIST_COLUMNS = frozenset({"hashtags", "interests", "allowed_regions"})
JSON_COLUMNS = frozenset({"extra"})


def count_rows(path: Path) -> int:
    with path.open("rb") as f:
        lines = sum(1 for line in f if line.strip())
    return lines - 1 if path.suffix.lower() == ".csv" else lines


def read_rows(path: Path) -> Iterator[dict[str, Any] | str]:
    """Rows of a ``.csv`` or JSON-lines file; a line that is not a JSON object yields its text,
    which validation then reports as a rejected row."""
    if path.suffix.lower() == ".csv":
        yield from _csv_rows(path)
        return
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                yield line.decode(errors="replace").strip()
                continue
            yield row if isinstance(row, dict) else str(row)


def _csv_rows(path: Path) -> Iterator[dict[str, Any] | str]:
    with path.open(newline="", encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            row: dict[str, Any] = {}
            for key, value in raw.items():
                if key is None or value is None or value == "":
                    continue
                if key in LIST_COLUMNS:
                    row[key] = [v for v in value.split("|") if v]
                elif key in JSON_COLUMNS:
                    try:
                        row[key] = orjson.loads(value)
                    except orjson.JSONDecodeError:
                        row[key] = value
                else:
                    row[key] = value
            yield row
