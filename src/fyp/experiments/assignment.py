"""Which experiment arms a user is in, decided by hashing: no per-user state anywhere.

A *layer* splits its users into ``BUCKETS`` buckets by ``hash(layer, user)``. An experiment that
starts takes a free range of its layer's buckets (``traffic`` of them), so experiments in one
layer never share a user, while layers hash independently of each other (orthogonal: a layer's
split is uncorrelated with every other layer's). Inside its range, an experiment picks the arm by
``hash(salt, user)`` against the arms' weights. The same user always lands in the same arm for as
long as the experiment runs, on every server, without coordination.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from fyp.config import deep_merge
from fyp.experiments.spec import BUCKETS, ExperimentRecord
from fyp.storage.data import DataStore, StoreUnavailable

log = logging.getLogger("fyp.experiments")


@dataclass(frozen=True)
class Assignment:
    arms: dict[str, str] = field(default_factory=dict)  # experiment name -> arm name
    overrides: dict[str, Any] = field(default_factory=dict)  # nested, merged into FeedSettings


class Assigner(Protocol):
    def assign(self, user_id: str) -> Assignment:
        """The arms ``user_id`` is in and the feed overrides they bring (cheap: per request)."""


class NoExperiments:
    """The null assigner: nobody is in any experiment."""

    def assign(self, user_id: str) -> Assignment:
        return Assignment()


def unit_hash(seed: str, user_id: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, user): the only randomness of assignment."""
    digest = hashlib.blake2b(f"{seed}\x1f{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def layer_bucket(layer: str, user_id: str) -> int:
    return int(unit_hash(f"layer:{layer}", user_id) * BUCKETS)


def arm_of(exp: ExperimentRecord, user_id: str) -> str | None:
    """The arm of ``user_id`` in ``exp``, or None when the user is outside its traffic."""
    if exp.buckets is None:
        return None
    lo, hi = exp.buckets
    if not lo <= layer_bucket(exp.spec.layer, user_id) < hi:
        return None
    arms = exp.spec.arms
    total = sum(a.weight for a in arms)
    u = unit_hash(f"arm:{exp.spec.salt}", user_id) * total
    for arm in arms:
        u -= arm.weight
        if u < 0:
            return arm.name
    return arms[-1].name  # float rounding at the very top of the range


def free_range(
    running: Sequence[ExperimentRecord], layer: str, traffic: float
) -> tuple[int, int] | None:
    """The lowest free range of ``layer`` wide enough for ``traffic``, or None if it is full."""
    width = max(1, round(traffic * BUCKETS))
    taken = sorted(e.buckets for e in running if e.spec.layer == layer and e.buckets is not None)
    start = 0
    for lo, hi in taken:
        if lo - start >= width:
            break
        start = max(start, hi)
    if BUCKETS - start < width:
        return None
    return start, start + width


def assign(running: Sequence[ExperimentRecord], user_id: str) -> Assignment:
    """The user's arms over ``running`` experiments; overrides merge in start order, so two layers
    that set the same knob resolve to the later experiment (avoid designing it that way)."""
    arms: dict[str, str] = {}
    overrides: dict[str, Any] = {}
    for exp in running:
        name = arm_of(exp, user_id)
        if name is None:
            continue
        arms[exp.name] = name
        arm = next(a for a in exp.spec.arms if a.name == name)
        if arm.overrides:
            overrides = deep_merge(overrides, arm.overrides)
    return Assignment(arms, overrides)


class StoreAssigner:
    """The running experiments from the store, re-read at most every ``cache_seconds``.

    A stale cache only delays a start or stop by that long; it never changes a user's arm.
    """

    def __init__(
        self,
        store: DataStore,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._running: list[ExperimentRecord] = []
        self._read_at: float | None = None

    def running(self) -> list[ExperimentRecord]:
        if self._stale():
            with self._lock:
                if self._stale():  # one thread refreshes, the others use its result
                    self._refresh()
        return self._running

    def _stale(self) -> bool:
        return self._read_at is None or self._clock() - self._read_at >= self.cache_seconds

    def _refresh(self) -> None:
        try:
            rows = self.store.list_experiments("running")
        except StoreUnavailable:
            # Keep serving the last known arms: the feed must not fail because the lab cannot
            # read its table; retry after the next cache period.
            log.warning("cannot read running experiments; keeping the last known ones")
            self._read_at = self._clock()
            return
        records = []
        for r in rows:
            try:
                records.append(
                    ExperimentRecord.from_row(
                        r.spec, r.state, r.created_ms, r.started_ms, r.stopped_ms
                    )
                )
            except ValidationError as e:
                # A spec that stopped validating (e.g. a feed setting was renamed since) must not
                # take the feed down with it: its users get the default feed until it is fixed.
                log.error("running experiment %r is invalid and is skipped: %s", r.name, e)
        records.sort(key=lambda e: (e.started_ms or 0, e.name))
        self._running = records
        self._read_at = self._clock()

    def invalidate(self) -> None:
        """Forget the cache (this process just started or stopped an experiment)."""
        with self._lock:
            self._read_at = None

    def assign(self, user_id: str) -> Assignment:
        return assign(self.running(), user_id)
