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
