"""The online state in Redis, shared by every API worker and surviving restarts.

Keys (``{id}`` is a hash tag, so one user's keys live on one cluster slot)::

    <p>u:{uid}:recent   list of "video|weight", newest first, trimmed to recent_size
    <p>u:{uid}:aff      hash "kind:key" -> "value|ts_ms" (decayed on write and read)
    <p>u:{uid}:mute     zset "kind:key" -> ts_ms of the newest negative (ZADD GT)
    <p>u:{uid}:served   zset video -> served ms, plus a sentinel member once primed
    <p>u:{uid}:warm     "1" once the state reflects the user's logged history
    <p>v:{vid}          hash counter -> n, and "vel" -> "value|ts_ms"
    <p>tr:{region}:<e>  zset video -> delta * 2 ** ((ts - start(e)) / hl), one per epoch e

Every user key expires ``user_ttl_days`` after the user's last write: inactive users cost
nothing once expired and the feed rebuilds them from the durable store.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, ParamSpec, TypeVar

import redis

from fyp.config import OnlineSettings
from fyp.storage.cache.base import (
    COUNTER_INDEX,
    GLOBAL,
    Affinity,
    Count,
    Engage,
    Heat,
    MarkWarm,
    Mute,
    OnlineUnavailable,
    Op,
    Reset,
    UserState,
    VideoCounters,
    decayed,
)

log = logging.getLogger("fyp.online")
P = ParamSpec("P")
R = TypeVar("R")
H = 3_600_000.0
# A trending epoch spans this many half-lives: scores stay far below float overflow (2**256).
EPOCH_HALF_LIVES = 256
# Ids cannot contain spaces, so this member can never collide with a video id.
SENTINEL = " "

_DECAY_ADD = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local delta = tonumber(ARGV[2])
local ts = tonumber(ARGV[3])
local hl = tonumber(ARGV[4])
local v, t = 0, ts
if cur then
  local sep = string.find(cur, '|', 1, true)
  v = tonumber(string.sub(cur, 1, sep - 1))
  t = tonumber(string.sub(cur, sep + 1))
end
local nt = math.max(t, ts)
v = v * math.pow(2, -(nt - t) / hl) + delta * math.pow(2, -(nt - ts) / hl)
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.17g|%.0f', v, nt))
return 1
"""


def _guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Redis errors become OnlineUnavailable, and after one the backend refuses calls for
    ``redis_retry_s`` without trying: a frozen server costs one timeout, not one per call."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        self: RedisOnlineState = args[0]  # type: ignore[assignment]
        if time.monotonic() < self._down_until:
            raise OnlineUnavailable(f"Redis is unavailable (retrying after {self._why})")
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as e:
            with self._down_lock:
                self._down_until = time.monotonic() + self.settings.redis_retry_s
                self._why = f"{type(e).__name__}: {e}"
            log.warning("Redis unavailable, degrading for %gs: %s", self.settings.redis_retry_s, e)
            raise OnlineUnavailable(str(e)) from e

    return call


def _parse(raw: str) -> tuple[float, int]:
    v, _, ts = raw.partition("|")
    return float(v), int(float(ts))


class RedisOnlineState:
    def __init__(self, settings: OnlineSettings, client: Any | None = None) -> None:
        self.settings = settings
        self.r: Any = client or redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
        )
        self._down_until = 0.0
        self._down_lock = threading.Lock()
        self._why = ""
        self.p = settings.key_prefix
        self._decay_add = self.r.register_script(_DECAY_ADD)
        self._aff_hl = settings.affinity_half_life_h * H
        self._tr_hl = settings.trending_half_life_h * H
        self._ttl_s = max(1, int(settings.user_ttl_days * 86_400))
        self._epoch_ms = self._tr_hl * EPOCH_HALF_LIVES

    @_guarded
    def ping(self) -> None:
        self.r.ping()

    def _u(self, user_id: str, what: str) -> str:
        return f"{self.p}u:{{{user_id}}}:{what}"

    def _v(self, video_id: str) -> str:
        return f"{self.p}v:{{{video_id}}}"

    def _tr(self, region: str, epoch: int) -> str:
        return f"{self.p}tr:{region}:{epoch}"

    # -- writes --------------------------------------------------------------------------------

    @_guarded
    def apply(self, ops: Sequence[Op]) -> None:
        if not ops:
            return
        pipe = self.r.pipeline(transaction=False)
        self._queue(pipe, ops)
        pipe.execute()

    @_guarded
    def rebuild_user(self, user_id: str, ops: Sequence[Op]) -> bool:
        # WATCH the warm mark, check it, then queue the rebuild in MULTI: EXEC fails if another
        # rebuild set the mark in between. Every key written is the user's ({user_id} hash
        # tag), so the transaction stays on one slot.
        warm = self._u(user_id, "warm")
        with self.r.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(warm)
                if pipe.exists(warm):
                    return False
                pipe.multi()
                self._queue(pipe, ops)
                pipe.execute()
            except redis.WatchError:
                return False
        return True

    def _queue(self, pipe: Any, ops: Sequence[Op]) -> None:
        touched: set[str] = set()
        recent_n = self.settings.recent_size
        for op in ops:
            if isinstance(op, Count):
                pipe.hincrby(self._v(op.video_id), op.counter, op.n)
            elif isinstance(op, Heat):
                self._decay_add(
                    keys=[self._v(op.video_id)],
                    args=["vel", op.delta, op.ts_ms, self._tr_hl],
                    client=pipe,
                )
                epoch = int(op.ts_ms // self._epoch_ms)
                scaled = op.delta * 2.0 ** ((op.ts_ms - epoch * self._epoch_ms) / self._tr_hl)
                for region in {GLOBAL, op.region or GLOBAL}:
                    key = self._tr(region, epoch)
                    pipe.zincrby(key, scaled, op.video_id)
                    pipe.expire(key, int(3 * self._epoch_ms / 1000))
            else:
                touched.add(op.user_id)
                if isinstance(op, Engage):
                    key = self._u(op.user_id, "recent")
                    pipe.lpush(key, f"{op.video_id}|{op.weight!r}")
                    pipe.ltrim(key, 0, recent_n - 1)
                elif isinstance(op, Affinity):
                    self._decay_add(
                        keys=[self._u(op.user_id, "aff")],
                        args=[f"{op.kind}:{op.key}", op.delta, op.ts_ms, self._aff_hl],
                        client=pipe,
                    )
                elif isinstance(op, Reset):
                    pipe.hdel(self._u(op.user_id, "aff"), f"{op.kind}:{op.key}")
                elif isinstance(op, Mute):
                    pipe.zadd(
                        self._u(op.user_id, "mute"), {f"{op.kind}:{op.key}": op.ts_ms}, gt=True
                    )
                elif isinstance(op, MarkWarm):
                    pipe.set(self._u(op.user_id, "warm"), "1")
        for uid in touched:
            for what in ("recent", "aff", "mute", "warm"):
                pipe.expire(self._u(uid, what), self._ttl_s)

    # -- reads ---------------------------------------------------------------------------------

    @_guarded
    def warm_users(self, user_ids: Collection[str]) -> set[str]:
        ids = list(user_ids)
        if not ids:
            return set()
        pipe = self.r.pipeline(transaction=False)
        for uid in ids:
            pipe.exists(self._u(uid, "warm"))
        return {uid for uid, hit in zip(ids, pipe.execute(), strict=True) if hit}

    @_guarded
    def user_state(self, user_id: str, now_ms: int) -> UserState:
        pipe = self.r.pipeline(transaction=False)
        pipe.lrange(self._u(user_id, "recent"), 0, -1)
        pipe.hgetall(self._u(user_id, "aff"))
        pipe.zrange(self._u(user_id, "mute"), 0, -1, withscores=True)
        pipe.exists(self._u(user_id, "warm"))
        recent_raw, aff_raw, mute_raw, warm = pipe.execute()
        recent: list[tuple[str, float]] = []
        for item in reversed(recent_raw):
            vid, _, w = item.rpartition("|")
            recent.append((vid, float(w)))
        aff: dict[str, dict[str, float]] = {}
        for name, raw in aff_raw.items():
            kind, _, key = name.partition(":")
            v, ts = _parse(raw)
            aff.setdefault(kind, {})[key] = decayed(v, ts, now_ms, self._aff_hl)
        mutes: dict[str, dict[str, int]] = {}
        for name, ts in mute_raw:
            kind, _, key = name.partition(":")
            mutes.setdefault(kind, {})[key] = int(ts)
        return UserState(recent=recent, affinities=aff, mutes=mutes, warm=bool(warm))

    @_guarded
    def served_since(self, user_id: str, since_ms: int) -> set[str] | None:
        found = self.r.zrangebyscore(self._u(user_id, "served"), since_ms, "+inf")
        if not found:
            return None  # not even the sentinel: cold
        return {v for v in found if v != SENTINEL}

    @_guarded
    def mark_served(self, user_id: str, video_ids: Collection[str], ts_ms: int) -> None:
        if not video_ids:
            return
        key = self._u(user_id, "served")
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(key, dict.fromkeys(video_ids, ts_ms))
        self._trim(pipe, key)
        pipe.execute()

    @_guarded
    def prime_served(self, user_id: str, served: dict[str, int]) -> None:
        key = self._u(user_id, "served")
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(key, {SENTINEL: math.inf, **served}, gt=True)
        self._trim(pipe, key)
        pipe.execute()

    def _trim(self, pipe: Any, key: str) -> None:
        # The sentinel scores +inf, so trimming the lowest ranks never drops it.
        pipe.zremrangebyrank(key, 0, -(self.settings.max_served + 2))
        pipe.expire(key, self._ttl_s)

    @_guarded
    def forget_user(self, user_id: str) -> None:
        self.r.delete(*(self._u(user_id, w) for w in ("recent", "aff", "mute", "served", "warm")))

    @_guarded
    def video_counters(self, video_ids: Sequence[str], now_ms: int) -> VideoCounters:
        n = len(video_ids)
        out = VideoCounters.empty(n)
        if not n:
            return out
        # HGETALL beat HMGET of the named fields (8.4 against 11.4 ms for 400 videos): only
        # the counters a video has come back, filled in here by column.
        rows: list[int] = []
        cols: list[int] = []
        values: list[int] = []
        col = COUNTER_INDEX.get
        for i, raw in enumerate(self._hgetall_many([self._v(vid) for vid in video_ids])):
            for name, value in raw.items():
                if name == "vel":
                    v, ts = _parse(value)
                    out.velocity[i] = decayed(v, ts, now_ms, self._tr_hl)
                elif (j := col(name)) is not None:
                    rows.append(i)
                    cols.append(j)
                    values.append(int(value))
        if rows:
            out.counts[rows, cols] = values
        return out

    def _hgetall_many(self, keys: list[str]) -> list[dict[str, str]]:
        """HGETALL of every key in one round trip, sent and read on a pooled connection
        directly: a feed reads some 700 videos' counters, and redis-py's pipeline spends about
        a third of such a read on its per-command bookkeeping (400 keys: 3.1-3.4 against 2.2
        ms). Connection errors are retried as a pipeline's are; after any error the connection
        is dropped, since replies may be left unread on it."""
        pool = self.r.connection_pool
        conn = pool.get_connection()
        packed = conn.pack_commands([("HGETALL", key) for key in keys])

        def send_and_read() -> list[Any]:
            conn.send_packed_command(packed)
            return [conn.read_response() for _ in keys]

        try:
            replies = conn.retry.call_with_retry(send_and_read, lambda _e: conn.disconnect())
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)
        # RESP3 answers a map, RESP2 a flat list of fields and values
        return [
            r if isinstance(r, dict) else dict(zip(r[::2], r[1::2], strict=True)) for r in replies
        ]

    @_guarded
    def trending(self, region: str, k: int, now_ms: int) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        epoch = int(now_ms // self._epoch_ms)
        pipe = self.r.pipeline(transaction=False)
        for e in (epoch, epoch - 1):
            pipe.zrevrange(self._tr(region, e), 0, k - 1, withscores=True)
        merged: dict[str, float] = {}
        for e, found in zip((epoch, epoch - 1), pipe.execute(), strict=True):
            scale = 2.0 ** ((e * self._epoch_ms - now_ms) / self._tr_hl)
            for vid, s in found:
                merged[vid] = merged.get(vid, 0.0) + s * scale
        best = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [(v, s) for v, s in best if s > 0]

    @_guarded
    def sizes(self) -> dict[str, int]:
        return {"keys": int(self.r.dbsize()), "bytes": int(self.r.info("memory")["used_memory"])}

    def close(self) -> None:
        self.r.close()
