"""Typed records that flow through fyp: the catalog, the graph, events and API keys."""

from fyp.models.batch import BatchRefused, Rejection, describe
from fyp.models.catalog import (
    AgeBand,
    ApiKey,
    Comment,
    CommentIn,
    ModerationIn,
    Scope,
    User,
    UserFields,
    Video,
    VideoBrief,
    VideoFields,
    VideoIn,
)
from fyp.models.events import Event, EventIn, EventType

__all__ = [
    "AgeBand",
    "ApiKey",
    "BatchRefused",
    "Comment",
    "CommentIn",
    "Event",
    "EventIn",
    "EventType",
    "ModerationIn",
    "Rejection",
    "Scope",
    "User",
    "UserFields",
    "Video",
    "VideoBrief",
    "VideoFields",
    "VideoIn",
    "describe",
]
