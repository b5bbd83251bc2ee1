"""API keys: made here, kept in the store by SHA-256 hash only, checked with a short cache."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import UTC, datetime

from fyp.models import ApiKey, Scope
from fyp.storage.data import DataStore

KEY_PREFIX = "fyp_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(store: DataStore, scope: Scope, name: str = "") -> tuple[ApiKey, str]:
    """Make and store a new key; the secret is returned once and never stored in clear."""
    secret = KEY_PREFIX + secrets.token_urlsafe(24)
    key = ApiKey(id=secrets.token_hex(6), scope=scope, name=name, created_at=datetime.now(UTC))
    store.add_api_key(key, hash_key(secret))
    return key, secret


def allows(have: Scope, need: Scope) -> bool:
    """``admin`` can do everything ``app`` can."""
    return have == need or have == "admin"


class KeyChecker:
    """Looks keys up in the store, trusting an answer (found or not) for ``ttl_s`` seconds,
    so a revoked key stops working within that time and the hot path rarely touches the store."""

    def __init__(self, store: DataStore, ttl_s: float) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def cached(self, secret: str) -> tuple[bool, ApiKey | None]:
        hit = self._cache.get(hash_key(secret))
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def lookup(self, secret: str) -> ApiKey | None:
        digest = hash_key(secret)
        found = self.store.find_api_key(digest)
        if found is not None and found.revoked:
            found = None
        with self._lock:
            if len(self._cache) > 10_000:  # wrong keys must not grow memory without bound
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + self.ttl_s, found)
        return found
