"""The online state (memory or Redis), opened from Settings."""

from __future__ import annotations

from fyp.config import OnlineSettings
from fyp.storage.cache.base import (
    COUNTERS,
    GLOBAL,
    Affinity,
    Count,
    Engage,
    Fold,
    Heat,
    MarkWarm,
    Mute,
    OnlineState,
    OnlineUnavailable,
    Op,
    OpList,
    OpSink,
    Reset,
    UserState,
    VideoCounters,
    compact,
)

__all__ = [
    "COUNTERS",
    "GLOBAL",
    "Affinity",
    "Count",
    "Engage",
    "Fold",
    "Heat",
    "MarkWarm",
    "Mute",
    "OnlineState",
    "OnlineUnavailable",
    "Op",
    "OpList",
    "OpSink",
    "Reset",
    "UserState",
    "VideoCounters",
    "compact",
    "open_online_state",
]


def open_online_state(settings: OnlineSettings) -> OnlineState:
    """The backend ``settings.backend`` names."""
    if settings.backend == "redis":
        from fyp.storage.cache.redis import RedisOnlineState

        return RedisOnlineState(settings)
    from fyp.storage.cache.memory import MemoryOnlineState

    return MemoryOnlineState(settings)
