"""Signed cookie sessions for the dashboard, and the app-scoped key the feed page uses.

A session cookie is ``<base64 payload>.<HMAC-SHA256>``; nothing is stored server-side, so every
worker accepts it as long as they share the secret (``web.session_secret`` or one file under
``var_dir`` that the first worker creates).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

import orjson

from fyp.auth import KeyChecker, create_key
from fyp.storage.data import DataStore

COOKIE = "fyp_dash"
SECRET_FILE = "web.secret"
APP_KEY_FILE = "web-app.key"


def _read_or_create(path: Path, make: str) -> str:
    """The file's content, creating it (0600) with ``make`` if missing; racing workers agree."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(make + "\n")
    return make


def session_secret(configured: str, var_dir: Path) -> bytes:
    if configured:
        return configured.encode()
    return _read_or_create(var_dir / SECRET_FILE, secrets.token_urlsafe(32)).encode()


class Signer:
    """Signs and checks dashboard session tokens."""

    def __init__(self, secret: bytes, ttl_ms: int) -> None:
        self._secret = secret
        self.ttl_ms = ttl_ms

    def _mac(self, payload: bytes) -> str:
        digest = hmac.new(self._secret, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, who: str, now_ms: int) -> str:
        payload = base64.urlsafe_b64encode(orjson.dumps({"u": who, "exp": now_ms + self.ttl_ms}))
        return f"{payload.decode()}.{self._mac(payload)}"

    def check(self, token: str | None, now_ms: int) -> str | None:
        """The signed-in name, or None for a missing, forged or expired token."""
        if not token or token.count(".") != 1:
            return None
        payload, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(payload.encode())):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(payload))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or int(data.get("exp", 0)) <= now_ms:
            return None
        who = data.get("u")
        return who if isinstance(who, str) else None


def web_app_key(store: DataStore, keys: KeyChecker, var_dir: Path) -> str:
    """An app-scoped key for the feed page (events and feeds only, never admin).

    Kept in ``var_dir`` so restarts and workers reuse one key instead of piling up new ones;
    replaced when it no longer works (revoked, or a different database).
    """
    path = var_dir / APP_KEY_FILE
    if path.exists():
        secret = path.read_text().strip()
        key = keys.lookup(secret)
        if key is not None and key.scope == "app":
            return secret
    _, secret = create_key(store, "app", "web feed page")
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(tmp, path)
    return secret
