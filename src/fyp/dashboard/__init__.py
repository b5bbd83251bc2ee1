"""What the dashboard shows: analytics over the event log, the moderation queue, model versions."""

from fyp.dashboard.analytics import Analytics
from fyp.dashboard.moderation import DECISIONS, decide, moderation_queue

__all__ = ["DECISIONS", "Analytics", "decide", "moderation_queue"]
