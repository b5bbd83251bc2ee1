"""Shared aliases and small value helpers used across the package."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# Ids are the app's own strings; control characters and surrounding space would make them
# unprintable in logs and ambiguous in URLs, so they are refused.
Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x20\x7f]+$")]


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store U+0000 in text; refusing it here keeps the backends alike.
    if "\x00" in value:
        raise ValueError("text must not contain the NUL character (U+0000)")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


def check_json_text(value: object) -> None:
    """Raise ValueError if any key or string inside a JSON value holds a NUL character."""
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _no_nul(str(k))
            check_json_text(v)
    elif isinstance(value, list):
        for v in value:
            check_json_text(v)


_HASHTAG_OK = re.compile(r"^[\w.\-]{1,100}$")
_CAPTION_TAG = re.compile(r"#([\w.\-]+)")


def normalise_hashtag(raw: str) -> str:
    """Lower-case, without '#' and surrounding space; raises ValueError on an unusable tag."""
    tag = raw.strip().lstrip("#").strip().lower()
    if not _HASHTAG_OK.match(tag):
        raise ValueError(f"hashtag {raw!r} must be 1-100 letters, digits, '_', '.' or '-'")
    return tag


def normalise_hashtags(raw: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in raw:
        seen.setdefault(normalise_hashtag(item), None)
    return list(seen)


def caption_hashtags(caption: str) -> list[str]:
    return [m.lower() for m in _CAPTION_TAG.findall(caption) if len(m) <= 100]


Hashtags = Annotated[list[str], AfterValidator(normalise_hashtags)]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
