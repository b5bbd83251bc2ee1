from __future__ import annotations

import os
from pathlib import Path

from fyp.auth import KeyChecker
from fyp.storage.data import open_data_store
from fyp.web.session import APP_KEY_FILE, SECRET_FILE, Signer, session_secret, web_app_key


def test_a_signed_session_round_trips_until_it_expires() -> None:
    s = Signer(b"k" * 32, ttl_ms=1000)
    token = s.sign("key:abc", now_ms=5000)
    assert s.check(token, 5999) == "key:abc"
    assert s.check(token, 6000) is None


def test_forged_or_malformed_tokens_are_refused() -> None:
    s = Signer(b"k" * 32, ttl_ms=1000)
    token = s.sign("user:pm", now_ms=0)
    payload, mac = token.split(".")
    assert Signer(b"other" * 8, 1000).check(token, 1) is None
    assert s.check(payload + "." + mac[::-1], 1) is None
    assert s.check(payload[:-2] + "xx." + mac, 1) is None
    for bad in (None, "", "nodot", "a.b.c", "!!!." + mac):
        assert s.check(bad, 1) is None


def test_the_secret_is_configured_or_kept_in_var_dir(tmp_path: Path) -> None:
    assert session_secret("configured", tmp_path) == b"configured"
    assert not (tmp_path / SECRET_FILE).exists()
    first = session_secret("", tmp_path)
    assert len(first) >= 32
    assert session_secret("", tmp_path) == first  # every worker and restart agrees
    assert os.stat(tmp_path / SECRET_FILE).st_mode & 0o077 == 0


def test_the_web_app_key_is_app_scoped_reused_and_replaced_when_stale(tmp_path: Path) -> None:
    store = open_data_store("memory://")
    keys = KeyChecker(store, 0)
    secret = web_app_key(store, keys, tmp_path)
    found = keys.lookup(secret)
    assert found is not None and found.scope == "app"
    assert web_app_key(store, keys, tmp_path) == secret
    assert len(store.list_api_keys()) == 1
    assert os.stat(tmp_path / APP_KEY_FILE).st_mode & 0o077 == 0
    # Another database (or a revoked key): a new key replaces the file.
    other = open_data_store("memory://")
    fresh = web_app_key(other, KeyChecker(other, 0), tmp_path)
    assert fresh != secret
    assert (tmp_path / APP_KEY_FILE).read_text().strip() == fresh
