"""An in-process DataStore for tests and throwaway runs: nothing survives the process."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fyp.config import ModerationState
from fyp.models import ApiKey, Comment, Event, EventType, User, Video, VideoBrief, VideoIn
from fyp.storage.data.base import (
    Activity,
    CatalogRow,
    EventRow,
    ExperimentRow,
    Exposure,
    LeaseRow,
    LogEvent,
    MigrationStatus,
    ServedRow,
    event_row,
    graph_rows,
    log_event,
)
from fyp.types import from_ms, now_ms, to_ms


def _catalog_row(v: Video, updated_ms: int) -> CatalogRow:
    return CatalogRow(
        v.id,
        v.creator_id,
        list(v.hashtags),
        v.sound_id,
        v.duration_ms,
        v.language,
        v.region,
        to_ms(v.created_at),
        updated_ms,
        v.moderation,
        list(v.allowed_regions) if v.allowed_regions is not None else None,
    )


class MemoryDataStore:
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._videos: dict[str, Video] = {}
        self._video_updated: dict[str, int] = {}
        self._follows: dict[tuple[str, str], int] = {}
        self._blocks: dict[tuple[str, str], int] = {}
        self._comments: dict[str, Comment] = {}
        self._events: list[Event] = []
        self._event_ids: set[str] = set()
        self._keys: dict[str, tuple[ApiKey, str]] = {}
        self._imports: dict[str, int] = {}
        self._served: list[ServedRow] = []  # -- served log --

    def close(self) -> None:
        pass

    def ping(self) -> None:
        pass

    def migrate(self) -> None:
        pass

    def migration_status(self) -> MigrationStatus:
        return MigrationStatus(current=None, head=None)

    def upsert_users(self, users: Sequence[User]) -> int:
        with self._lock:
            latest = {u.id: u for u in users}
            for uid, u in latest.items():
                old = self._users.get(uid)
                created = old.created_at if old else u.created_at
                self._users[uid] = u.model_copy(update={"created_at": created})
        return len(latest)

    def get_user(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    def existing_user_ids(self, user_ids: Collection[str]) -> set[str]:
        return {u for u in user_ids if u in self._users}

    def create_missing_users(self, user_ids: Collection[str]) -> None:
        with self._lock:
            for uid in user_ids:
                self._users.setdefault(uid, User(id=uid))

    def upsert_videos(self, videos: Sequence[VideoIn], default_moderation: ModerationState) -> int:
        with self._lock:
            latest = {v.id: v for v in videos}
            for vid, v in latest.items():
                old = self._videos.get(vid)
                data = v.model_dump()
                if old is not None:
                    data["created_at"] = old.created_at
                if v.moderation is None:
                    data["moderation"] = old.moderation if old else default_moderation
                    data["moderation_reason"] = old.moderation_reason if old else None
                self._videos[vid] = Video.model_construct(**data)
                self._video_updated[vid] = now_ms()
        return len(latest)

    def get_video(self, video_id: str) -> Video | None:
        return self._videos.get(video_id)

    def get_videos(self, video_ids: Collection[str]) -> dict[str, Video]:
        return {vid: v for vid in video_ids if (v := self._videos.get(vid)) is not None}

    def video_documents(self, video_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        return {vid: v.model_dump(mode="json") for vid, v in self.get_videos(video_ids).items()}

    def videos_changed(
        self, since_ms: int, after: tuple[int, str] | None = None, limit: int = 5000
    ) -> list[CatalogRow]:
        with self._lock:
            keys = sorted(
                (ms, vid)
                for vid, ms in self._video_updated.items()
                if ms >= since_ms and (after is None or (ms, vid) > after)
            )[:limit]
            return [_catalog_row(self._videos[vid], ms) for ms, vid in keys]

    def video_briefs(self, video_ids: Collection[str]) -> dict[str, VideoBrief]:
        out = {}
        for vid in video_ids:
            v = self._videos.get(vid)
            if v is not None:
                out[vid] = VideoBrief(v.creator_id, v.duration_ms)
        return out

    def list_videos(
        self,
        *,
        creator_id: str | None = None,
        moderation: ModerationState | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Video]:
        out = []
        for vid in sorted(self._videos):
            v = self._videos[vid]
            if after is not None and vid <= after:
                continue
            if creator_id is not None and v.creator_id != creator_id:
                continue
            if moderation is not None and v.moderation != moderation:
                continue
            out.append(v)
            if len(out) == limit:
                break
        return out

    def set_moderation(
        self,
        video_id: str,
        state: ModerationState,
        reason: str | None,
        allowed_regions: list[str] | None,
    ) -> Video | None:
        with self._lock:
            v = self._videos.get(video_id)
            if v is None:
                return None
            update: dict[str, object] = {"moderation": state, "moderation_reason": reason}
            if allowed_regions is not None:
                update["allowed_regions"] = allowed_regions
            self._videos[video_id] = v = v.model_copy(update=update)
            self._video_updated[video_id] = now_ms()
        return v

    def set_follow(self, user_id: str, creator_id: str, on: bool, ts_ms: int) -> None:
        with self._lock:
            self._set_edge(self._follows, user_id, creator_id, on, ts_ms)

    @staticmethod
    def _set_edge(
        edges: dict[tuple[str, str], int], user_id: str, creator_id: str, on: bool, ts: int
    ) -> None:
        if on:
            edges.setdefault((user_id, creator_id), ts)
        else:
            edges.pop((user_id, creator_id), None)

    def following(self, user_id: str) -> list[str]:
        return sorted(c for (u, c) in self._follows if u == user_id)

    def set_block(self, user_id: str, creator_id: str, on: bool, ts_ms: int) -> None:
        with self._lock:
            self._set_edge(self._blocks, user_id, creator_id, on, ts_ms)

    def blocked(self, user_id: str) -> list[str]:
        return sorted(c for (u, c) in self._blocks if u == user_id)

    def add_comment(self, comment: Comment) -> bool:
        with self._lock:
            if comment.id in self._comments:
                return False
            self._comments[comment.id] = comment
            return True

    def comments(self, video_id: str, limit: int = 100) -> list[Comment]:
        found = [c for c in self._comments.values() if c.video_id == video_id]
        found.sort(key=lambda c: (-c.created_at.timestamp(), c.id))
        return found[:limit]

    def append_events(self, rows: Sequence[EventRow]) -> list[str]:
        stored: list[str] = []
        with self._lock:
            for r in rows:
                if r["event_id"] in self._event_ids:
                    continue
                self._event_ids.add(r["event_id"])
                stored.append(r["event_id"])
                self._events.append(_row_event(r))
            for r in graph_rows(rows, stored):
                creator = r["creator_id"]
                assert creator is not None
                on = r["type"] == "follow"
                self._set_edge(self._follows, r["user_id"], creator, on, r["ts_ms"])
        return stored

    def get_event(self, event_id: str) -> Event | None:
        if event_id not in self._event_ids:
            return None
        return next(e for e in self._events if e.event_id == event_id)

    def count_events(self) -> int:
        return len(self._events)

    def read_events(self, after_seq: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        # seq is the 1-based position in the log, as in the SQL backends' autoincrement.
        start = max(after_seq, 0)
        return [(start + i + 1, e) for i, e in enumerate(self._events[start : start + limit])]

    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        with self._lock:
            if key.id in self._keys or any(h == key_hash for _, h in self._keys.values()):
                raise ValueError("duplicate API key")
            self._keys[key.id] = (key, key_hash)

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        return next((k for k, h in self._keys.values() if h == key_hash), None)

    def list_api_keys(self) -> list[ApiKey]:
        return sorted((k for k, _ in self._keys.values()), key=lambda k: (k.created_at, k.id))

    def revoke_api_key(self, key_id: str) -> bool:
        with self._lock:
            found = self._keys.get(key_id)
            if found is None or found[0].revoked:
                return False
            self._keys[key_id] = (found[0].model_copy(update={"revoked": True}), found[1])
            return True

    def import_progress(self, source: str) -> int:
        return self._imports.get(source, 0)

    def set_import_progress(self, source: str, rows_done: int) -> None:
        self._imports[source] = rows_done

    # -- experiments --
    @property
    def _experiments(self) -> dict[str, ExperimentRow]:
        # Created lazily so this section needs no line in __init__ (kept additive).
        found: dict[str, ExperimentRow] | None = self.__dict__.get("_experiment_rows")
        if found is None:
            found = self.__dict__.setdefault("_experiment_rows", {})
        return found

    def create_experiment(self, row: ExperimentRow) -> bool:
        with self._lock:
            if row.name in self._experiments:
                return False
            self._experiments[row.name] = copy.deepcopy(row)
            return True

    def get_experiment(self, name: str) -> ExperimentRow | None:
        row = self._experiments.get(name)
        return None if row is None else copy.deepcopy(row)

    def list_experiments(self, state: str | None = None) -> list[ExperimentRow]:
        rows = [r for r in self._experiments.values() if state is None or r.state == state]
        rows.sort(key=lambda r: (r.created_ms, r.name))
        return copy.deepcopy(rows)

    def update_experiment(self, row: ExperimentRow, expect_state: str) -> bool:
        with self._lock:
            old = self._experiments.get(row.name)
            if old is None or old.state != expect_state:
                return False
            kept = dataclasses.replace(copy.deepcopy(row), created_ms=old.created_ms)
            self._experiments[row.name] = kept
            return True

    def experiment_exposures(self, experiment: str, start_ms: int, end_ms: int) -> list[Exposure]:
        return [
            Exposure(r.request_id, r.user_id, r.video_id, r.served_ms, r.arms[experiment])
            for _, r in self.read_served(0, len(self._served) + 1)
            if experiment in r.arms and start_ms <= r.served_ms <= end_ms
        ]

    def users_activity(self, user_ids: Collection[str]) -> list[Activity]:
        wanted = set(user_ids)
        return [
            Activity(e.user_id, e.video_id, e.type.value, _exact_ms(e.ts), e.watch_ms, e.request_id)
            for e in self._events
            if e.user_id in wanted
        ]

    # -- served log --
    def log_served(self, rows: Sequence[ServedRow]) -> None:
        with self._lock:
            self._served.extend(rows)

    def served_video_ids(self, user_id: str, since_ms: int) -> set[str]:
        return {
            r.video_id for r in self._served if r.user_id == user_id and r.served_ms >= since_ms
        }

    def read_served(self, after_seq: int = 0, limit: int = 10_000) -> list[tuple[int, ServedRow]]:
        start = max(after_seq, 0)
        return [(start + i + 1, r) for i, r in enumerate(self._served[start : start + limit])]

    def user_events(
        self, user_id: str, since_ms: int, limit: int = 500, *, impressions: bool = True
    ) -> list[LogEvent]:
        mine = [
            e
            for e in self._events
            if e.user_id == user_id
            and _exact_ms(e.ts) >= since_ms
            and (impressions or e.type != "impression")
        ]
        mine.sort(key=lambda e: e.ts)  # stable: ties keep log order
        return [log_event(event_row(e)) for e in mine[-limit:]] if limit > 0 else []

    # -- leases --
    @property
    def _leases(self) -> dict[str, LeaseRow]:
        found: dict[str, LeaseRow] | None = self.__dict__.get("_lease_rows")
        if found is None:
            found = self.__dict__.setdefault("_lease_rows", {})
        return found

    def acquire_lease(self, name: str, holder: str, expires_ms: int, now_ms: int) -> bool:
        with self._lock:
            cur = self._leases.get(name)
            if cur is not None and cur.holder != holder and cur.expires_ms > now_ms:
                return False
            self._leases[name] = LeaseRow(name, holder, expires_ms)
            return True

    def release_lease(self, name: str, holder: str) -> bool:
        with self._lock:
            cur = self._leases.get(name)
            if cur is None or cur.holder != holder:
                return False
            del self._leases[name]
            return True

    def get_lease(self, name: str) -> LeaseRow | None:
        return self._leases.get(name)


def _row_event(r: EventRow) -> Event:
    return Event.model_construct(
        event_id=r["event_id"],
        user_id=r["user_id"],
        type=EventType(r["type"]),
        ts=from_ms(r["ts_ms"]),
        video_id=r["video_id"],
        creator_id=r["creator_id"],
        sound_id=r["sound_id"],
        hashtag=r["hashtag"],
        watch_ms=r["watch_ms"],
        request_id=r["request_id"],
        extra=r["extra"],
        received_at=from_ms(r["received_ms"]),
    )


# -- experiments --
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _exact_ms(dt: datetime) -> int:
    # Integer arithmetic: float timestamps can lose a millisecond (1.001 s * 1000 = 1000.99...).
    return (dt - _EPOCH) // timedelta(milliseconds=1)
