"""The durable store's contract: catalog, social graph, event log, API keys, import progress.

Every backend (memory, SQLite, PostgreSQL) passes the same contract suite in
``tests/storage/test_data_store_contract.py``. Writes return only after they are committed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypedDict

from fyp.config import ModerationState
from fyp.models import ApiKey, Comment, Event, User, Video, VideoBrief, VideoIn


class EventRow(TypedDict):
    """One event ready for the log: times in epoch milliseconds."""

    event_id: str
    user_id: str
    video_id: str | None
    creator_id: str | None
    sound_id: str | None
    hashtag: str | None
    type: str
    ts_ms: int
    received_ms: int
    watch_ms: int | None
    request_id: str | None
    extra: dict[str, Any] | None


EVENT_ROW_FIELDS: tuple[str, ...] = tuple(EventRow.__annotations__)


class LogEvent(NamedTuple):
    """What the online state takes from a logged event (a cold user's rebuild reads hundreds
    of these: one index read, no per-row dict, no ``extra`` to decode)."""

    user_id: str
    video_id: str | None
    creator_id: str | None
    sound_id: str | None
    hashtag: str | None
    type: str
    ts_ms: int
    watch_ms: int | None


LOG_EVENT_FIELDS: tuple[str, ...] = LogEvent._fields


def log_event(row: EventRow) -> LogEvent:
    """The online state's part of a log row."""
    return LogEvent(
        row["user_id"],
        row["video_id"],
        row["creator_id"],
        row["sound_id"],
        row["hashtag"],
        row["type"],
        row["ts_ms"],
        row["watch_ms"],
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_row(e: Event) -> EventRow:
    """An Event as a log row (times as exact integer milliseconds)."""
    ms = timedelta(milliseconds=1)
    return {
        "event_id": e.event_id,
        "user_id": e.user_id,
        "video_id": e.video_id,
        "creator_id": e.creator_id,
        "sound_id": e.sound_id,
        "hashtag": e.hashtag,
        "type": e.type.value,
        "ts_ms": (e.ts - _EPOCH) // ms,
        "received_ms": (e.received_at - _EPOCH) // ms,
        "watch_ms": e.watch_ms,
        "request_id": e.request_id,
        "extra": e.extra,
    }


class CatalogRow(NamedTuple):
    """What the feed's catalog index keeps of a video, and when its record last changed."""

    id: str
    creator_id: str
    hashtags: list[str]
    sound_id: str | None
    duration_ms: int | None
    language: str | None
    region: str | None
    created_ms: int
    updated_ms: int
    moderation: str
    allowed_regions: list[str] | None


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    current: str | None
    head: str | None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


# -- served log --
@dataclass(frozen=True, slots=True)
class ServedRow:
    """One served feed item: what was shown, where, why, and the ranker features at that time."""

    request_id: str
    user_id: str
    video_id: str
    position: int
    served_ms: int
    source: str
    score: float | None
    features: dict[str, float]
    arms: dict[str, str]


# -- experiments --
@dataclass(frozen=True, slots=True)
class ExperimentRow:
    """One experiment as the store keeps it; ``spec`` is a JSON document that the experiments
    package validates (the store does not look inside)."""

    name: str
    spec: dict[str, Any]
    state: str
    created_ms: int
    started_ms: int | None = None
    stopped_ms: int | None = None


class Exposure(NamedTuple):
    """A served item of an experiment: who saw what, when, in which arm."""

    request_id: str
    user_id: str
    video_id: str
    served_ms: int
    arm: str


class Activity(NamedTuple):
    """The columns of a logged event that experiment metrics read."""

    user_id: str
    video_id: str | None
    type: str
    ts_ms: int
    watch_ms: int | None
    request_id: str | None


# -- leases --
@dataclass(frozen=True, slots=True)
class LeaseRow:
    """Who holds the lease ``name`` and until when (epoch ms)."""

    name: str
    holder: str
    expires_ms: int


class StoreUnavailable(RuntimeError):
    """The backing database cannot be reached or refused the operation for a transient reason."""


class DataStore(Protocol):
    url: str

    def close(self) -> None: ...

    def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot answer a trivial query."""

    def migrate(self) -> None:
        """Bring the schema up to the newest migration (a no-op where there is no schema)."""

    def migration_status(self) -> MigrationStatus: ...

    # users
    def upsert_users(self, users: Sequence[User]) -> int:
        """Insert or replace users; ``created_at`` is kept from the first insert."""

    def get_user(self, user_id: str) -> User | None: ...

    def existing_user_ids(self, user_ids: Collection[str]) -> set[str]: ...

    def create_missing_users(self, user_ids: Collection[str]) -> None:
        """Create bare users for ids not yet known; existing users are left untouched."""

    # videos
    def upsert_videos(self, videos: Sequence[VideoIn], default_moderation: ModerationState) -> int:
        """Insert or replace videos whose creators exist (the caller checks).

        A video without a moderation state gets ``default_moderation`` when new and keeps its
        state when it already exists.
        """

    def get_video(self, video_id: str) -> Video | None: ...

    def get_videos(self, video_ids: Collection[str]) -> dict[str, Video]:
        """The records of these videos in one read (unknown ids are absent)."""

    def video_documents(self, video_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """``get_videos`` as JSON documents, each exactly ``Video.model_dump(mode="json")``: the
        feed's response shows the served records so, and a store may build them from its rows
        without the models."""

    def video_briefs(self, video_ids: Collection[str]) -> dict[str, VideoBrief]: ...

    def videos_changed(
        self, since_ms: int, after: tuple[int, str] | None = None, limit: int = 5000
    ) -> list[CatalogRow]:
        """Videos in any moderation state whose record changed at or after ``since_ms``, ordered
        by (updated_ms, id), starting after the key ``after`` (keyset pagination). ``since_ms``
        0 pages through the whole catalog."""

    def list_videos(
        self,
        *,
        creator_id: str | None = None,
        moderation: ModerationState | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Video]:
        """Videos ordered by id, starting after the id ``after`` (keyset pagination)."""

    def set_moderation(
        self,
        video_id: str,
        state: ModerationState,
        reason: str | None,
        allowed_regions: list[str] | None,
    ) -> Video | None: ...

    # graph
    def set_follow(self, user_id: str, creator_id: str, on: bool, ts_ms: int) -> None: ...

    def following(self, user_id: str) -> list[str]: ...

    def set_block(self, user_id: str, creator_id: str, on: bool, ts_ms: int) -> None: ...

    def blocked(self, user_id: str) -> list[str]: ...

    def add_comment(self, comment: Comment) -> bool:
        """Store a comment; False when its id exists already (an idempotent retry)."""

    def comments(self, video_id: str, limit: int = 100) -> list[Comment]: ...

    # event log
    def append_events(self, rows: Sequence[EventRow]) -> list[str]:
        """Append events in one transaction and return the ids newly stored.

        Ids already in the log are skipped (idempotency). A newly stored ``follow`` or
        ``unfollow`` event with a creator also updates the follow graph, in ts order, in the
        same transaction.
        """

    def get_event(self, event_id: str) -> Event | None: ...

    def count_events(self) -> int: ...

    def read_events(self, after_seq: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        """Events in log order (a monotonically increasing sequence number) after ``after_seq``."""

    # API keys, stored by hash only
    def add_api_key(self, key: ApiKey, key_hash: str) -> None: ...

    def find_api_key(self, key_hash: str) -> ApiKey | None: ...

    def list_api_keys(self) -> list[ApiKey]: ...

    def revoke_api_key(self, key_id: str) -> bool: ...

    # resumable imports
    def import_progress(self, source: str) -> int: ...

    def set_import_progress(self, source: str, rows_done: int) -> None: ...

    # -- experiments --
    def create_experiment(self, row: ExperimentRow) -> bool:
        """Store a new experiment; False when one with that name exists already."""

    def get_experiment(self, name: str) -> ExperimentRow | None: ...

    def list_experiments(self, state: str | None = None) -> list[ExperimentRow]:
        """Experiments ordered by creation time (then name), optionally in one state only."""

    def update_experiment(self, row: ExperimentRow, expect_state: str) -> bool:
        """Replace spec, state and times of ``row.name`` if its state is still ``expect_state``.

        The compare-and-set makes concurrent start/stop requests safe: one wins, the other sees
        False and re-reads.
        """

    def experiment_exposures(self, experiment: str, start_ms: int, end_ms: int) -> list[Exposure]:
        """Served items between ``start_ms`` and ``end_ms`` (inclusive) whose arms name
        ``experiment``, in log order (reads only the columns needed, never the features)."""

    def users_activity(self, user_ids: Collection[str]) -> list[Activity]:
        """Every logged event of these users; each user's events in log order."""

    # -- served log --
    def log_served(self, rows: Sequence[ServedRow]) -> None:
        """Append served items in one transaction."""

    def served_video_ids(self, user_id: str, since_ms: int) -> set[str]:
        """Ids of videos served to ``user_id`` at or after ``since_ms``."""

    def read_served(self, after_seq: int = 0, limit: int = 10_000) -> list[tuple[int, ServedRow]]:
        """Served rows in log order after ``after_seq``."""

    def user_events(
        self, user_id: str, since_ms: int, limit: int = 500, *, impressions: bool = True
    ) -> list[LogEvent]:
        """The newest ``limit`` events of a user with ts at or after ``since_ms``, oldest first
        (ties in log order), for rebuilding a cold user's online state; without impressions
        (before the limit applies) when ``impressions`` is False. SQL stores answer from one
        covering index (``ix_events_user_replay``) without touching the table."""

    # -- leases --
    def acquire_lease(self, name: str, holder: str, expires_ms: int, now_ms: int) -> bool:
        """Take or extend the lease ``name`` for ``holder`` until ``expires_ms``.

        Succeeds when nobody holds the lease, when ``holder`` holds it already (a renewal), or
        when the current lease expired (``expires_ms <= now_ms``). The check and the write are
        one atomic statement, so of two concurrent callers at most one gets a valid lease.
        """

    def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up if ``holder`` holds it; False when someone else does (or nobody)."""

    def get_lease(self, name: str) -> LeaseRow | None:
        """The lease's current row, expired or not; None when nobody ever took it or released."""


def graph_rows(rows: Sequence[EventRow], stored: Collection[str]) -> list[EventRow]:
    """The follow/unfollow rows that were newly stored, in ts order, for replay on the graph.

    When a batch repeats an event id, the first copy is the one stored; later copies are
    duplicates and must not touch the graph.
    """
    fresh = set(stored)
    first: dict[str, EventRow] = {}
    for r in rows:
        if r["type"] in ("follow", "unfollow") and r["creator_id"] and r["event_id"] in fresh:
            first.setdefault(r["event_id"], r)
    return sorted(first.values(), key=lambda r: r["ts_ms"])
