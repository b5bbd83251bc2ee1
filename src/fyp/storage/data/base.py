"""The durable store's contract: catalog, social graph, event log, API keys, import progress.

Every backend (memory, SQLite, PostgreSQL) passes the same contract suite in
``tests/storage/test_data_store_contract.py``. Writes return only after they are committed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

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


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    current: str | None
    head: str | None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


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

    def video_briefs(self, video_ids: Collection[str]) -> dict[str, VideoBrief]: ...

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
