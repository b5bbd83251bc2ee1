"""Leases: jobs that must run on one machine at a time (the trainer), over the shared store.

A lease is a row ``(name, holder, expires_ms)`` in the ``leases`` table. Whoever holds an
unexpired lease owns the job; a holder renews it well before it expires; a holder that dies
simply stops renewing, and once the lease expires the next caller takes over. Taking, renewing
and expiring are decided by one atomic statement in the store (see ``DataStore.acquire_lease``),
so two machines racing for the same lease never both win.

Times are the callers' clocks: keep machines NTP-synchronised and the TTL far above their skew
(the default trainer lease is 120 s, renewed every 40 s).

Use::

    lease = Lease(store, "trainer", ttl_s=120)
    with lease.hold() as held:          # raises LeaseBusy if another machine runs the job
        version = build_model()
        held.check()                    # raises LeaseLost if the lease lapsed meanwhile
        publish(version)
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fyp.ops import metrics
from fyp.storage.data import DataStore, LeaseRow, StoreUnavailable
from fyp.types import now_ms

log = logging.getLogger("fyp.leases")


class LeaseBusy(RuntimeError):
    """Someone else holds the lease."""


class LeaseLost(RuntimeError):
    """The lease was not renewed in time (or was taken over): stop before publishing anything."""


def default_holder() -> str:
    """host:pid:random, unique per process and readable in the ``leases`` table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One named lease as seen by one holder.

    Args:
        store: the shared store (PostgreSQL when several machines compete).
        name: what the lease guards, e.g. ``"trainer"``.
        ttl_s: how long a take or renewal lasts.
        holder: this holder's id (default: host, pid and a random part).
        clock: epoch milliseconds (tests move it by hand).
    """

    def __init__(
        self,
        store: DataStore,
        name: str,
        ttl_s: float,
        holder: str | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError("a lease needs a positive ttl")
        self.store = store
        self.name = name
        self.ttl_ms = int(ttl_s * 1000)
        self.holder = holder or default_holder()
        self.clock = clock
        self._valid_until = 0  # by our own clock: past it, we may no longer act as the holder

    def acquire(self) -> bool:
        """Take the lease, or renew it if we hold it; False when another holder's is valid."""
        now = self.clock()
        ok = self.store.acquire_lease(self.name, self.holder, now + self.ttl_ms, now)
        # Measured from before the write: the row's expiry can only be later than this.
        self._valid_until = now + self.ttl_ms if ok else 0
        return ok

    renew = acquire

    def release(self) -> None:
        """Give the lease up so the next holder need not wait for it to expire."""
        self._valid_until = 0
        self.store.release_lease(self.name, self.holder)

    @property
    def held(self) -> bool:
        """True while our last successful take or renewal has not run out (by our clock)."""
        return self.clock() < self._valid_until

    def current(self) -> LeaseRow | None:
        return self.store.get_lease(self.name)

    @contextmanager
    def hold(self, renew_every_s: float | None = None) -> Iterator[HeldLease]:
        """Hold the lease for the duration of a ``with`` block, renewing it in a thread.

        Raises:
            LeaseBusy: another holder has it.
        """
        if not self.acquire():
            cur = self.current()
            raise LeaseBusy(f"lease {self.name!r} is held by {cur.holder if cur else '?'}")
        held = HeldLease(self, renew_every_s or self.ttl_ms / 3000)
        metrics.set_lease_held(self.name, True)
        try:
            yield held
        finally:
            held.stop()
            metrics.set_lease_held(self.name, False)
            try:
                self.release()
            except StoreUnavailable as e:  # it expires on its own
                log.warning("could not release lease %s: %s", self.name, e)


class HeldLease:
    """A lease renewed by a background thread while the job runs."""

    def __init__(self, lease: Lease, every_s: float) -> None:
        self.lease = lease
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(
            target=self._renew, args=(every_s,), name=f"lease-{lease.name}", daemon=True
        )
        self._thread.start()

    @property
    def lost(self) -> bool:
        return self._lost.is_set() or not self.lease.held

    def check(self) -> None:
        """Raise LeaseLost unless the lease is still ours: call it right before publishing."""
        if self.lost:
            raise LeaseLost(f"lease {self.lease.name!r} lapsed; another holder may have it")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                ok = self.lease.renew()
            except StoreUnavailable as e:
                # Not fatal yet: the lease is valid until it expires; check() tells the job.
                log.warning("lease %s renewal failed: %s", self.lease.name, e)
                continue
            if not ok:
                log.error("lease %s was taken over by another holder", self.lease.name)
                self._lost.set()
                return
