"""The SQL data store: SQLite (WAL, the embedded default) and PostgreSQL, one implementation.

Both dialects support ``INSERT .. ON CONFLICT`` and ``RETURNING``, which is all the event log
needs to be idempotent and to tell stored events from duplicates in one round trip.
"""

from __future__ import annotations

import os
import sqlite3
from collections import namedtuple
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite

from fyp.config import ModerationState
from fyp.models import ApiKey, Comment, Event, EventType, User, Video, VideoBrief, VideoIn
from fyp.storage import migrate
from fyp.storage.data import schema as t
from fyp.storage.data.base import (
    LOG_EVENT_FIELDS,
    Activity,
    CatalogRow,
    EventRow,
    ExperimentRow,
    Exposure,
    LeaseRow,
    LogEvent,
    MigrationStatus,
    ServedRow,
    StoreUnavailable,
    graph_rows,
)
from fyp.types import from_ms, now_ms, to_ms


def _json_dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _user_row(u: User, now: int) -> dict[str, Any]:
    return {
        "id": u.id,
        "region": u.region,
        "language": u.language,
        "birth_year": u.birth_year,
        "age_band": u.age_band,
        "interests": u.interests,
        "created_ms": to_ms(u.created_at),
        "updated_ms": now,
    }


def _row_user(r: sa.Row[Any]) -> User:
    return User.model_construct(
        id=r.id,
        region=r.region,
        language=r.language,
        birth_year=r.birth_year,
        age_band=r.age_band,
        interests=list(r.interests),
        created_at=from_ms(r.created_ms),
    )


def _video_row(v: VideoIn, moderation: str, now: int) -> dict[str, Any]:
    return {
        "id": v.id,
        "creator_id": v.creator_id,
        "caption": v.caption,
        "hashtags": v.hashtags,
        "sound_id": v.sound_id,
        "duration_ms": v.duration_ms,
        "language": v.language,
        "region": v.region,
        "created_ms": to_ms(v.created_at),
        "updated_ms": now,
        "moderation": moderation,
        "allowed_regions": v.allowed_regions,
        "parent_video_id": v.parent_video_id,
        "parent_kind": v.parent_kind,
        "media_url": v.media_url,
        "thumbnail_url": v.thumbnail_url,
    }


def _row_document(r: sa.Row[Any]) -> dict[str, Any]:
    """A video row as ``Video.model_dump(mode="json")`` shows it (the same keys in the same
    order, the time as pydantic writes a UTC datetime), without building the model: about a
    fifth of a feed's reading back of its ten served records (a test holds it to the model's)."""
    return {
        "creator_id": r.creator_id,
        "caption": r.caption,
        "hashtags": list(r.hashtags),
        "sound_id": r.sound_id,
        "duration_ms": r.duration_ms,
        "language": r.language,
        "region": r.region,
        "created_at": from_ms(r.created_ms).isoformat().replace("+00:00", "Z"),
        "moderation": r.moderation,
        "allowed_regions": r.allowed_regions,
        "parent_video_id": r.parent_video_id,
        "parent_kind": r.parent_kind,
        "media_url": r.media_url,
        "thumbnail_url": r.thumbnail_url,
        "id": r.id,
        "moderation_reason": r.moderation_reason,
    }


def _row_video(r: sa.Row[Any]) -> Video:
    return Video.model_construct(
        id=r.id,
        creator_id=r.creator_id,
        caption=r.caption,
        hashtags=list(r.hashtags),
        sound_id=r.sound_id,
        duration_ms=r.duration_ms,
        language=r.language,
        region=r.region,
        created_at=from_ms(r.created_ms),
        moderation=r.moderation,
        moderation_reason=r.moderation_reason,
        allowed_regions=r.allowed_regions,
        parent_video_id=r.parent_video_id,
        parent_kind=r.parent_kind,
        media_url=r.media_url,
        thumbnail_url=r.thumbnail_url,
    )


def _row_event(r: sa.Row[Any]) -> Event:
    return Event.model_construct(
        event_id=r.event_id,
        user_id=r.user_id,
        type=EventType(r.type),
        ts=from_ms(r.ts_ms),
        video_id=r.video_id,
        creator_id=r.creator_id,
        sound_id=r.sound_id,
        hashtag=r.hashtag,
        watch_ms=r.watch_ms,
        request_id=r.request_id,
        extra=r.extra,
        received_at=from_ms(r.received_ms),
    )


def _row_key(r: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        id=r.id,
        scope=r.scope,
        name=r.name,
        created_at=from_ms(r.created_ms),
        revoked=r.revoked_ms is not None,
    )


# The reads every feed request makes, built once: building a select and its cache key on each
# call cost about 40 of the ~100 us a one-row read took through SQLAlchemy (a million-video
# bench world); executing a prebuilt one with bound parameters takes about 15.
_GET_USER = sa.select(t.users).where(t.users.c.id == sa.bindparam("user_id"))
_GET_VIDEOS = sa.select(t.videos).where(t.videos.c.id.in_(sa.bindparam("ids", expanding=True)))
# SQLite: the ids as one JSON array, so the SQL is the same whatever their number (an expanding
# IN renders a new statement per count, which neither SQLAlchemy nor sqlite3 can cache).
_GET_VIDEOS_JSON = sa.select(t.videos).where(
    t.videos.c.id.in_(
        sa.select(sa.func.json_each(sa.bindparam("ids")).table_valued("value").c.value)
    )
)
_FOLLOWING = (
    sa.select(t.follows.c.creator_id)
    .where(t.follows.c.user_id == sa.bindparam("user_id"))
    .order_by(t.follows.c.creator_id)
)
_BLOCKED = (
    sa.select(t.blocks.c.creator_id)
    .where(t.blocks.c.user_id == sa.bindparam("user_id"))
    .order_by(t.blocks.c.creator_id)
)
_SERVED_SINCE = (
    sa.select(t.served.c.video_id)
    .where(t.served.c.user_id == sa.bindparam("user_id"))
    .where(t.served.c.served_ms >= sa.bindparam("since_ms"))
    .distinct()
)
_USER_EVENTS = (
    sa.select(*(t.events.c[name] for name in LOG_EVENT_FIELDS))
    .where(t.events.c.user_id == sa.bindparam("user_id"))
    .where(t.events.c.ts_ms >= sa.bindparam("since_ms"))
    .order_by(t.events.c.ts_ms.desc(), t.events.c.seq.desc())
    .limit(sa.bindparam("limit"))
)
# The same without impressions (about half of a user's log), which move no per-user state.
_USER_EVENTS_NO_IMPRESSIONS = _USER_EVENTS.where(t.events.c.type != "impression")


# Column types whose SQLite value is the Python value (JSON is decoded by ``_RawRead``; an Enum,
# a String underneath, would need its conversion).
_RAW_TYPES = (sa.String, sa.Integer, sa.JSON)


class _RawRead:
    """A prebuilt select, compiled once, that SQLite runs on the pooled DBAPI connection.

    Through a SQLAlchemy ``Connection`` a one-row read on SQLite costs 80-100 us, almost all of
    it the connection's life (checkout, the explicit BEGIN, rollback, checkin) and the result
    machinery; the same SELECT on the DBAPI connection takes about 5 (bench world, a million
    videos). A single SELECT in autocommit mode reads one consistent snapshot, so the feed's
    per-request one-statement reads take this path. Rows come back with attribute access, as
    SQLAlchemy's do, JSON columns decoded.
    """

    def __init__(self, stmt: sa.Select[Any], dialect: sa.Dialect, row: Any = None) -> None:
        cols = list(stmt.selected_columns)
        for c in cols:
            if not isinstance(c.type, _RAW_TYPES) or isinstance(c.type, sa.Enum):
                raise TypeError(f"{c.name}: {c.type!r} needs SQLAlchemy's result processing")
        self.json = [i for i, c in enumerate(cols) if isinstance(c.type, sa.JSON)]
        # ``row``: a named tuple of these columns to build instead (no second copy of each row)
        made: Any = namedtuple("_Row", [c.name for c in cols])  # type: ignore[misc]
        self.row: Any = made if row is None else row
        if tuple(self.row._fields) != tuple(c.name for c in cols):
            raise TypeError(f"{self.row.__name__} does not name the columns of {stmt}")
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        # Parameters the compiler added with a value of their own (SQLite's OFFSET 0).
        self.fixed = {k: v for k, v in compiled.params.items() if v is not None}

    def args(self, params: dict[str, Any]) -> list[Any]:
        return [params[n] if n in params else self.fixed[n] for n in self.names]

    def rows(self, raw: Sequence[tuple[Any, ...]]) -> list[Any]:
        make, loads = self.row._make, orjson.loads
        if not self.json:
            return [make(r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i in self.json:
                if values[i] is not None:
                    values[i] = loads(values[i])
            out.append(make(values))
        return out


class _RawReaders:
    """SQLite connections of their own for the prebuilt per-request reads (``_RawRead``): taking
    one from a list and putting it back is a list operation, where SQLAlchemy's pool checkout
    and checkin (its reset on return included) cost about 15 us, six times a feed. Reads run in
    autocommit, as they did on the pool's raw connections, so each sees every commit before
    it. At most ``keep`` idle connections stay open; a forked child opens its own (a SQLite
    connection must not cross a fork)."""

    def __init__(self, database: str, keep: int) -> None:
        self.database = database
        self.keep = keep
        self._idle: list[sqlite3.Connection] = []
        self._pid = os.getpid()

    def take(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # forked: the parent's connections are the parent's
            self._idle, self._pid = [], os.getpid()
        try:
            return self._idle.pop()  # atomic under the GIL: no lock
        except IndexError:
            con = sqlite3.connect(self.database, timeout=30.0, check_same_thread=False)
            _sqlite_pragmas(con)
            return con

    def give(self, con: sqlite3.Connection) -> None:
        if len(self._idle) < self.keep and self._pid == os.getpid():
            self._idle.append(con)
        else:
            con.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


# What a down or unreachable database raises through SQLAlchemy (reported as StoreUnavailable).
_UNREACHABLE = (sa.exc.OperationalError, sa.exc.TimeoutError, sa.exc.InterfaceError)


def _unavailable(e: Exception) -> StoreUnavailable:
    return StoreUnavailable(str(e.orig if isinstance(e, sa.exc.DBAPIError) else e))


class SqlDataStore:
    """DataStore on SQLite or PostgreSQL through SQLAlchemy Core."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        connect_timeout_s: float = 5.0,
        pool_timeout_s: float = 10.0,  # -- scale --
        statement_timeout_s: float = 0.0,  # -- scale -- PostgreSQL only; 0 means none
    ) -> None:
        self.url = url
        parsed = sa.make_url(url)
        self.dialect = parsed.get_backend_name()
        common: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
        }
        if self.dialect == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                raise ValueError("SQLite needs a file path (sqlite:///var/fyp.db); use memory://")
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            args = {"timeout": 30.0, "check_same_thread": False}
            # SQLite has one writer at a time: one pooled writer connection makes threads queue
            # in the pool (fair, no busy-wait), readers run beside it thanks to WAL.
            self._writer = sa.create_engine(
                url, connect_args=args, pool_size=1, max_overflow=0, pool_timeout=30, **common
            )
            self._reader = sa.create_engine(
                url, connect_args=args, pool_size=pool_size, max_overflow=0, **common
            )
            _sqlite_setup(self._writer, begin="BEGIN IMMEDIATE")
            _sqlite_setup(self._reader, begin="BEGIN")
            self._insert: Any = sqlite.insert
            self._readers: _RawReaders | None = _RawReaders(parsed.database, keep=pool_size)
            d = self._reader.dialect
            self._raw: dict[sa.Select[Any], _RawRead] | None = {
                stmt: _RawRead(stmt, d, row)
                for stmt, row in (
                    (_GET_USER, None),
                    (_GET_VIDEOS_JSON, None),
                    (_FOLLOWING, None),
                    (_BLOCKED, None),
                    (_SERVED_SINCE, None),
                    # a cold user's rebuild reads hundreds: LogEvents straight from the rows
                    (_USER_EVENTS, LogEvent),
                    (_USER_EVENTS_NO_IMPRESSIONS, LogEvent),
                )
            }
        elif self.dialect == "postgresql":
            engine = sa.create_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                pool_timeout=pool_timeout_s,
                connect_args=_pg_connect_args(parsed, connect_timeout_s, statement_timeout_s),
                **common,
            )
            self._writer = self._reader = engine
            self._insert = pg.insert
            self._readers = None
            # A round trip to the server outweighs SQLAlchemy's own cost: no raw path.
            self._raw = None
        else:
            raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        try:
            with self._writer.begin() as conn:
                yield conn
        except _UNREACHABLE as e:
            raise _unavailable(e) from e

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        try:
            with self._reader.connect() as conn:
                yield conn
        except _UNREACHABLE as e:
            raise _unavailable(e) from e

    def _select(self, stmt: sa.Select[Any], params: dict[str, Any]) -> Sequence[Any]:
        """The rows of one of the prebuilt per-request reads: on SQLite through ``_RawRead``,
        elsewhere through SQLAlchemy."""
        raw = self._raw.get(stmt) if self._raw is not None else None
        readers = self._readers
        if raw is None or readers is None:
            with self._read() as conn:
                return conn.execute(stmt, params).all()
        con: sqlite3.Connection | None = None
        try:
            con = readers.take()  # may open one: a file that cannot be opened fails here
            found = con.execute(raw.sql, raw.args(params)).fetchall()
        except BaseException as e:
            if con is not None:
                con.close()  # a connection that failed is not reused
            if isinstance(e, sqlite3.OperationalError | sqlite3.InterfaceError):
                raise StoreUnavailable(str(e)) from e
            raise
        readers.give(con)
        return raw.rows(found)

    def close(self) -> None:
        if self._readers is not None:
            self._readers.close()
        self._writer.dispose()
        self._reader.dispose()

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(sa.text("SELECT 1"))

    def migrate(self) -> None:
        try:
            migrate.upgrade(self._writer)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as e:
            raise StoreUnavailable(str(e)) from e

    def migration_status(self) -> MigrationStatus:
        try:
            return migrate.status(self._reader)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as e:
            raise StoreUnavailable(str(e)) from e

    def _upsert(self, table: sa.Table, keys: Sequence[str], keep: Collection[str]) -> Any:
        stmt = self._insert(table)
        skip = set(keys) | set(keep)
        return stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in skip},
        )

    # -- users ---------------------------------------------------------------------------------

    def upsert_users(self, users: Sequence[User]) -> int:
        if not users:
            return 0
        now = now_ms()
        # PostgreSQL refuses to update one row twice in a statement: the last copy wins.
        rows = list({u.id: _user_row(u, now) for u in users}.values())
        with self._write() as conn:
            conn.execute(self._upsert(t.users, ["id"], ["created_ms"]), rows)
        return len(rows)

    def get_user(self, user_id: str) -> User | None:
        found = self._select(_GET_USER, {"user_id": user_id})
        return _row_user(found[0]) if found else None

    def existing_user_ids(self, user_ids: Collection[str]) -> set[str]:
        if not user_ids:
            return set()
        with self._read() as conn:
            q = sa.select(t.users.c.id).where(t.users.c.id.in_(list(user_ids)))
            return set(conn.execute(q).scalars())

    def create_missing_users(self, user_ids: Collection[str]) -> None:
        if not user_ids:
            return
        now = now_ms()
        rows = [_user_row(User(id=u, created_at=from_ms(now)), now) for u in sorted(set(user_ids))]
        with self._write() as conn:
            conn.execute(self._insert(t.users).on_conflict_do_nothing(), rows)

    # -- videos --------------------------------------------------------------------------------

    def upsert_videos(self, videos: Sequence[VideoIn], default_moderation: ModerationState) -> int:
        if not videos:
            return 0
        now = now_ms()
        latest = {v.id: v for v in videos}
        given = [_video_row(v, v.moderation, now) for v in latest.values() if v.moderation]
        keep = [_video_row(v, default_moderation, now) for v in latest.values() if not v.moderation]
        mod_cols = ["moderation", "moderation_reason"]
        with self._write() as conn:
            if given:
                conn.execute(self._upsert(t.videos, ["id"], ["created_ms"]), given)
            if keep:
                conn.execute(self._upsert(t.videos, ["id"], ["created_ms", *mod_cols]), keep)
        return len(latest)

    def get_video(self, video_id: str) -> Video | None:
        with self._read() as conn:
            r = conn.execute(sa.select(t.videos).where(t.videos.c.id == video_id)).first()
        return None if r is None else _row_video(r)

    def get_videos(self, video_ids: Collection[str]) -> dict[str, Video]:
        if not video_ids:
            return {}
        if self._raw is not None:
            rows = self._select(_GET_VIDEOS_JSON, {"ids": _json_dumps(list(video_ids))})
        else:
            rows = self._select(_GET_VIDEOS, {"ids": list(video_ids)})
        return {r.id: _row_video(r) for r in rows}

    def video_documents(self, video_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        if not video_ids:
            return {}
        if self._raw is None:  # PostgreSQL: a round trip outweighs building the models
            return {k: v.model_dump(mode="json") for k, v in self.get_videos(video_ids).items()}
        rows = self._select(_GET_VIDEOS_JSON, {"ids": _json_dumps(list(video_ids))})
        return {r.id: _row_document(r) for r in rows}

    def videos_changed(
        self, since_ms: int, after: tuple[int, str] | None = None, limit: int = 5000
    ) -> list[CatalogRow]:
        c = t.videos.c
        q = (
            sa.select(*(c[name] for name in CatalogRow._fields))
            .where(c.updated_ms >= since_ms)
            .order_by(c.updated_ms, c.id)
            .limit(limit)
        )
        if after is not None:
            q = q.where(sa.tuple_(c.updated_ms, c.id) > sa.tuple_(*after))
        with self._read() as conn:
            return [CatalogRow(*r) for r in conn.execute(q)]

    def video_briefs(self, video_ids: Collection[str]) -> dict[str, VideoBrief]:
        if not video_ids:
            return {}
        c = t.videos.c
        with self._read() as conn:
            q = sa.select(c.id, c.creator_id, c.duration_ms).where(c.id.in_(list(video_ids)))
            return {r.id: VideoBrief(r.creator_id, r.duration_ms) for r in conn.execute(q)}

    def list_videos(
        self,
        *,
        creator_id: str | None = None,
        moderation: ModerationState | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Video]:
        c = t.videos.c
        q = sa.select(t.videos).order_by(c.id).limit(limit)
        if creator_id is not None:
            q = q.where(c.creator_id == creator_id)
        if moderation is not None:
            q = q.where(c.moderation == moderation)
        if after is not None:
            q = q.where(c.id > after)
        with self._read() as conn:
            return [_row_video(r) for r in conn.execute(q)]

    def set_moderation(
        self,
        video_id: str,
        state: ModerationState,
        reason: str | None,
        allowed_regions: list[str] | None,
    ) -> Video | None:
        values: dict[str, Any] = {
            "moderation": state,
            "moderation_reason": reason,
            "updated_ms": now_ms(),
        }
        if allowed_regions is not None:
            values["allowed_regions"] = allowed_regions
        with self._write() as conn:
            q = sa.update(t.videos).where(t.videos.c.id == video_id).values(**values)
            if conn.execute(q).rowcount == 0:
                return None
        return self.get_video(video_id)

    # -- graph ---------------------------------------------------------------------------------

    def _set_edge(
        self, conn: sa.Connection, table: sa.Table, user_id: str, creator_id: str, on: bool, ts: int
    ) -> None:
        if on:
            stmt = self._insert(table).on_conflict_do_nothing()
            conn.execute(stmt, {"user_id": user_id, "creator_id": creator_id, "created_ms": ts})
        else:
            c = table.c
            conn.execute(sa.delete(table).where(c.user_id == user_id, c.creator_id == creator_id))

    def set_follow(self, user_id: str, creator_id: str, on: bool, ts_ms: int) -> None:
        with self._write() as conn:
            self._set_edge(conn, t.follows, user_id, creator_id, on, ts_ms)

    def following(self, user_id: str) -> list[str]:
        return [r[0] for r in self._select(_FOLLOWING, {"user_id": user_id})]

    def set_block(self, user_id: str, creator_id: str, on: bool, ts_ms: int) -> None:
        with self._write() as conn:
            self._set_edge(conn, t.blocks, user_id, creator_id, on, ts_ms)

    def blocked(self, user_id: str) -> list[str]:
        return [r[0] for r in self._select(_BLOCKED, {"user_id": user_id})]

    def add_comment(self, comment: Comment) -> bool:
        row = {
            "id": comment.id,
            "video_id": comment.video_id,
            "user_id": comment.user_id,
            "text": comment.text,
            "created_ms": to_ms(comment.created_at),
        }
        stmt = self._insert(t.comments).on_conflict_do_nothing().returning(t.comments.c.id)
        with self._write() as conn:
            return conn.execute(stmt, row).first() is not None

    def comments(self, video_id: str, limit: int = 100) -> list[Comment]:
        c = t.comments.c
        q = (
            sa.select(t.comments)
            .where(c.video_id == video_id)
            .order_by(c.created_ms.desc(), c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [
                Comment(
                    id=r.id,
                    video_id=r.video_id,
                    user_id=r.user_id,
                    text=r.text,
                    created_at=from_ms(r.created_ms),
                )
                for r in conn.execute(q)
            ]

    # -- event log -----------------------------------------------------------------------------

    def append_events(self, rows: Sequence[EventRow]) -> list[str]:
        if not rows:
            return []
        stmt = (
            self._insert(t.events)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(t.events.c.event_id)
        )
        with self._write() as conn:
            stored: list[str] = list(conn.execute(stmt, list(rows)).scalars())
            for r in graph_rows(rows, stored):
                creator = r["creator_id"]
                assert creator is not None
                on = r["type"] == "follow"
                self._set_edge(conn, t.follows, r["user_id"], creator, on, r["ts_ms"])
        return stored

    def get_event(self, event_id: str) -> Event | None:
        with self._read() as conn:
            q = sa.select(t.events).where(t.events.c.event_id == event_id)
            r = conn.execute(q).first()
        return None if r is None else _row_event(r)

    def count_events(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.events)).scalar_one())

    def read_events(self, after_seq: int = 0, limit: int = 10_000) -> list[tuple[int, Event]]:
        c = t.events.c
        q = sa.select(t.events).where(c.seq > after_seq).order_by(c.seq).limit(limit)
        with self._read() as conn:
            return [(r.seq, _row_event(r)) for r in conn.execute(q)]

    # -- API keys ------------------------------------------------------------------------------

    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        row = {
            "id": key.id,
            "key_hash": key_hash,
            "scope": key.scope,
            "name": key.name,
            "created_ms": to_ms(key.created_at),
            "revoked_ms": None,
        }
        with self._write() as conn:
            conn.execute(sa.insert(t.api_keys), row)

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with self._read() as conn:
            q = sa.select(t.api_keys).where(t.api_keys.c.key_hash == key_hash)
            r = conn.execute(q).first()
        return None if r is None else _row_key(r)

    def list_api_keys(self) -> list[ApiKey]:
        with self._read() as conn:
            q = sa.select(t.api_keys).order_by(t.api_keys.c.created_ms, t.api_keys.c.id)
            return [_row_key(r) for r in conn.execute(q)]

    def revoke_api_key(self, key_id: str) -> bool:
        c = t.api_keys.c
        q = (
            sa.update(t.api_keys)
            .where(c.id == key_id, c.revoked_ms.is_(None))
            .values(revoked_ms=now_ms())
        )
        with self._write() as conn:
            return bool(conn.execute(q).rowcount)

    # -- imports -------------------------------------------------------------------------------

    def import_progress(self, source: str) -> int:
        c = t.import_progress.c
        with self._read() as conn:
            v = conn.execute(sa.select(c.rows_done).where(c.source == source)).scalar()
        return int(v or 0)

    def set_import_progress(self, source: str, rows_done: int) -> None:
        row = {"source": source, "rows_done": rows_done, "updated_ms": now_ms()}
        with self._write() as conn:
            conn.execute(self._upsert(t.import_progress, ["source"], []), row)

    # -- experiments ---------------------------------------------------------------------------

    def create_experiment(self, row: ExperimentRow) -> bool:
        stmt = self._insert(t.experiments).on_conflict_do_nothing().returning(t.experiments.c.name)
        with self._write() as conn:
            return conn.execute(stmt, _experiment_values(row)).first() is not None

    def get_experiment(self, name: str) -> ExperimentRow | None:
        with self._read() as conn:
            q = sa.select(t.experiments).where(t.experiments.c.name == name)
            r = conn.execute(q).first()
        return None if r is None else _row_experiment(r)

    def list_experiments(self, state: str | None = None) -> list[ExperimentRow]:
        c = t.experiments.c
        q = sa.select(t.experiments).order_by(c.created_ms, c.name)
        if state is not None:
            q = q.where(c.state == state)
        with self._read() as conn:
            return [_row_experiment(r) for r in conn.execute(q)]

    def update_experiment(self, row: ExperimentRow, expect_state: str) -> bool:
        c = t.experiments.c
        values = _experiment_values(row)
        del values["name"], values["created_ms"]
        q = (
            sa.update(t.experiments)
            .where(c.name == row.name, c.state == expect_state)
            .values(**values)
        )
        with self._write() as conn:
            return bool(conn.execute(q).rowcount)

    def experiment_exposures(self, experiment: str, start_ms: int, end_ms: int) -> list[Exposure]:
        c = t.served.c
        q = (
            sa.select(c.request_id, c.user_id, c.video_id, c.served_ms, c.arms)
            .where(c.served_ms.between(start_ms, end_ms))
            .order_by(c.seq)
        )
        with self._read() as conn:
            return [
                Exposure(r.request_id, r.user_id, r.video_id, r.served_ms, r.arms[experiment])
                for r in conn.execute(q)
                if r.arms and experiment in r.arms
            ]

    def users_activity(self, user_ids: Collection[str]) -> list[Activity]:
        c = t.events.c
        cols = (c.user_id, c.video_id, c.type, c.ts_ms, c.watch_ms, c.request_id)
        ids = sorted(set(user_ids))
        out: list[Activity] = []
        with self._read() as conn:
            for i in range(0, len(ids), 1000):
                q = sa.select(*cols).where(c.user_id.in_(ids[i : i + 1000])).order_by(c.seq)
                out.extend(Activity(*r) for r in conn.execute(q))
        return out

    # -- served log ----------------------------------------------------------------------------

    def log_served(self, rows: Sequence[ServedRow]) -> None:
        if not rows:
            return
        values = [
            {
                "request_id": r.request_id,
                "user_id": r.user_id,
                "video_id": r.video_id,
                "position": r.position,
                "served_ms": r.served_ms,
                "source": r.source,
                "score": r.score,
                "features": r.features,
                "arms": r.arms,
            }
            for r in rows
        ]
        with self._write() as conn:
            conn.execute(sa.insert(t.served), values)

    def served_video_ids(self, user_id: str, since_ms: int) -> set[str]:
        params = {"user_id": user_id, "since_ms": since_ms}
        return {r[0] for r in self._select(_SERVED_SINCE, params)}

    def read_served(self, after_seq: int = 0, limit: int = 10_000) -> list[tuple[int, ServedRow]]:
        c = t.served.c
        q = sa.select(t.served).where(c.seq > after_seq).order_by(c.seq).limit(limit)
        with self._read() as conn:
            return [
                (
                    r.seq,
                    ServedRow(
                        request_id=r.request_id,
                        user_id=r.user_id,
                        video_id=r.video_id,
                        position=r.position,
                        served_ms=r.served_ms,
                        source=r.source,
                        score=r.score,
                        features=dict(r.features or {}),
                        arms=dict(r.arms or {}),
                    ),
                )
                for r in conn.execute(q)
            ]

    def user_events(
        self, user_id: str, since_ms: int, limit: int = 500, *, impressions: bool = True
    ) -> list[LogEvent]:
        params = {"user_id": user_id, "since_ms": since_ms, "limit": limit}
        stmt = _USER_EVENTS if impressions else _USER_EVENTS_NO_IMPRESSIONS
        rows = self._select(stmt, params)
        found = list(rows) if self._raw is not None else [LogEvent._make(r) for r in rows]
        found.reverse()
        return found

    # -- leases --
    def acquire_lease(self, name: str, holder: str, expires_ms: int, now_ms: int) -> bool:
        c = t.leases.c
        stmt = self._insert(t.leases).values(name=name, holder=holder, expires_ms=expires_ms)
        # One statement decides: a concurrent acquirer either inserts first (and we see the
        # conflict, then its row, locked) or finds our row; the WHERE is checked on that row.
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": stmt.excluded.holder, "expires_ms": stmt.excluded.expires_ms},
            where=sa.or_(c.holder == holder, c.expires_ms <= now_ms),
        ).returning(c.holder)
        with self._write() as conn:
            return conn.execute(stmt).first() is not None

    def release_lease(self, name: str, holder: str) -> bool:
        c = t.leases.c
        with self._write() as conn:
            q = sa.delete(t.leases).where(c.name == name, c.holder == holder)
            return bool(conn.execute(q).rowcount)

    def get_lease(self, name: str) -> LeaseRow | None:
        with self._read() as conn:
            r = conn.execute(sa.select(t.leases).where(t.leases.c.name == name)).first()
        return None if r is None else LeaseRow(r.name, r.holder, r.expires_ms)


# -- experiments --
def _experiment_values(row: ExperimentRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "spec": row.spec,
        "state": row.state,
        "created_ms": row.created_ms,
        "started_ms": row.started_ms,
        "stopped_ms": row.stopped_ms,
    }


def _row_experiment(r: sa.Row[Any]) -> ExperimentRow:
    return ExperimentRow(r.name, dict(r.spec), r.state, r.created_ms, r.started_ms, r.stopped_ms)


# -- scale --
def _pg_connect_args(
    url: sa.URL, connect_timeout_s: float, statement_timeout_s: float
) -> dict[str, Any]:
    """libpq settings that turn a dead or stuck server into errors instead of hangs."""
    args: dict[str, Any] = {
        "connect_timeout": max(1, round(connect_timeout_s)),
        # A peer that vanished (machine gone, network cut) is noticed in ~10-15 s instead of the
        # kernel's two hours; unacknowledged writes give up after the same time.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 15_000,
    }
    if statement_timeout_s > 0:
        # Appended to any options the URL carries (e.g. a search_path), which connect_args
        # would otherwise replace.
        given = url.query.get("options", "")
        given = given if isinstance(given, str) else " ".join(given)
        timeout = f"-c statement_timeout={int(statement_timeout_s * 1000)}"
        args["options"] = f"{given} {timeout}".strip()
    return args


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection) -> None:
    """Every SQLite connection's settings (the engines' and the raw readers')."""
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk (fsync of the WAL) before we acknowledge it.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # A 64 MiB page cache keeps the event-id index's hot pages in memory, and checkpointing
    # every 10,000 pages instead of 1,000 stops random-id inserts from checkpointing on
    # almost every commit (measured: 14.7k -> 17.7k events/s over HTTP, bench/ingest.py).
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA wal_autocheckpoint=10000")
    cur.close()


def _sqlite_setup(engine: sa.Engine, begin: str) -> None:
    """Pragmas for durability and concurrency, and explicit BEGIN (pysqlite's own is deferred)."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        _sqlite_pragmas(dbapi_conn)

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(begin)
