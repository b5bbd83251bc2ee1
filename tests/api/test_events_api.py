"""POST /v1/events: per-event validation, idempotency, and every kind of bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from fyp.api.app import create_app
from fyp.config import Settings
from fyp.storage.data import open_data_store
from tests.api.support import assert_error, assert_healthy, event, seed, serve, with_settings
from tests.conftest import Api

INGEST_KEYS = {"received", "stored", "duplicates", "rejected"}
TS_LATER = "2026-01-01T00:05:00Z"


@pytest.fixture
def api(api: Api) -> Api:
    seed(api.store)
    return api


@pytest.fixture
def small(settings: Settings) -> Iterator[Api]:
    """The API with a 1 KiB body limit."""
    small_settings = with_settings(settings, api={"max_body_bytes": 1024})
    with serve(small_settings) as api:
        seed(api.store)
        yield api


def post(api: Api, body: Any) -> Any:
    return api.client.post("/v1/events", json=body, headers=api.app)


def assert_ingest(response: Any, status: int, **figures: Any) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == INGEST_KEYS
    for name, value in figures.items():
        assert body[name] == value, (name, body)
    return body


# -- happy path, on every backend ------------------------------------------------------------


def test_batch_is_stored_durably_then_resend_stores_nothing(api_on: Api) -> None:
    seed(api_on.store)
    batch = {
        "events": [
            event("e1", type="play", watch_ms=4200, request_id="req-1"),
            event("e2", user_id="u2", video_id="v2", extra={"screen": "fyp"}),
        ]
    }
    r = post(api_on, batch)
    assert_ingest(r, 200, received=2, stored=2, duplicates=0, rejected=[])
    stored = api_on.store.get_event("e1")
    assert stored is not None
    assert (stored.user_id, stored.video_id, stored.type, stored.watch_ms) == (
        "u1",
        "v1",
        "play",
        4200,
    )
    assert stored.request_id == "req-1"
    other = api_on.store.get_event("e2")
    assert other is not None
    assert other.extra == {"screen": "fyp"}
    if not api_on.store.url.startswith("memory"):
        # Committed before the answer: a separate connection sees both events.
        fresh = open_data_store(api_on.store.url)
        try:
            assert fresh.count_events() == 2
            assert fresh.get_event("e2") is not None
        finally:
            fresh.close()

    again = post(api_on, batch)
    assert_ingest(again, 200, received=2, stored=0, duplicates=2, rejected=[])
    assert api_on.store.count_events() == 2
    # a re-send mixed with a new event that is itself sent twice
    mixed = post(api_on, [event("e3", type="follow"), *batch["events"], event("e3", type="follow")])
    assert_ingest(mixed, 200, received=4, stored=1, duplicates=3, rejected=[])
    assert api_on.store.count_events() == 3
    assert api_on.store.following("u1") == ["c1"]


def test_event_text_with_a_nul_character_never_fails_the_batch(api_on: Api) -> None:
    # PostgreSQL cannot keep U+0000 in text or JSONB: the event must be stored or rejected by
    # index, never turn the whole batch into a server error.
    seed(api_on.store)
    r = post(api_on, [event("ok"), event("nul", extra={"note": "a\u0000b"})])
    body = assert_ingest(r, 200, received=2)
    assert api_on.store.get_event("ok") is not None
    if body["stored"] == 1:
        assert [x["index"] for x in body["rejected"]] == [1]
        assert "extra" in body["rejected"][0]["reason"]
    else:
        assert body["stored"] == 2
        kept = api_on.store.get_event("nul")
        assert kept is not None
        assert kept.extra == {"note": "a\u0000b"}
    assert_healthy(api_on)


def test_bare_list_is_accepted(api: Api) -> None:
    r = post(api, [event("e1"), event("e2")])
    assert_ingest(r, 200, received=2, stored=2, duplicates=0)
    assert api.store.count_events() == 2


def test_empty_batch_is_fine_and_stores_nothing(api: Api) -> None:
    assert_ingest(post(api, {"events": []}), 200, received=0, stored=0, duplicates=0, rejected=[])
    assert api.store.count_events() == 0


def test_duplicates_inside_one_batch(api: Api) -> None:
    r = post(api, [event("e1"), event("e1"), event("e2"), event("e1")])
    assert_ingest(r, 200, received=4, stored=2, duplicates=2, rejected=[])
    assert api.store.count_events() == 2


def test_resend_with_new_events_stores_only_the_new_ones(api: Api) -> None:
    post(api, [event("e1"), event("e2")])
    r = post(api, [event("e2"), event("e3"), event("e1")])
    assert_ingest(r, 200, received=3, stored=1, duplicates=2)
    assert api.store.count_events() == 3


def test_mixed_batch_stores_the_good_and_reports_the_bad_by_index(api: Api) -> None:
    r = post(
        api,
        [
            event("good1"),
            event("bad1", type="play", watch_ms=-10),
            event("good2", video_id="v2"),
            event("bad2", user_id=42),
            {"not": "an event"},
        ],
    )
    body = assert_ingest(r, 200, received=5, stored=2, duplicates=0)
    rejected = body["rejected"]
    assert [(x["index"], x["id"]) for x in rejected] == [(1, "bad1"), (3, "bad2"), (4, None)]
    assert rejected[0]["reason"].startswith("watch_ms: ")
    assert rejected[1]["reason"].startswith("user_id: ")
    assert "event_id: " in rejected[2]["reason"]
    assert api.store.get_event("good1") is not None
    assert api.store.get_event("good2") is not None
    assert api.store.get_event("bad1") is None
    assert api.store.count_events() == 2


def test_follow_with_only_a_video_fills_the_creator_and_follows(api: Api) -> None:
    r = post(api, [event("f1", type="follow")])
    assert_ingest(r, 200, stored=1, rejected=[])
    stored = api.store.get_event("f1")
    assert stored is not None
    assert stored.creator_id == "c1"
    following = api.client.get("/v1/users/u1/following", headers=api.app)
    assert following.json() == {"following": ["c1"]}
    # and unfollow through an event naming the creator alone
    r = post(api, [event("f2", type="unfollow", video_id=None, creator_id="c1", ts=TS_LATER)])
    assert_ingest(r, 200, stored=1)
    assert api.client.get("/v1/users/u1/following", headers=api.app).json() == {"following": []}


def test_unknown_user_video_and_creator_are_reported_not_created(api: Api) -> None:
    r = post(
        api,
        [
            event("e0", user_id="ghost"),
            event("e1", video_id="nope"),
            event("e2", type="follow", video_id=None, creator_id="nobody"),
        ],
    )
    body = assert_ingest(r, 422, received=3, stored=0, duplicates=0)
    assert body["rejected"] == [
        {"index": 0, "id": "e0", "reason": "unknown user 'ghost'"},
        {"index": 1, "id": "e1", "reason": "unknown video 'nope'"},
        {"index": 2, "id": "e2", "reason": "unknown creator 'nobody'"},
    ]
    assert api.store.count_events() == 0
    assert api.store.existing_user_ids({"ghost", "nobody"}) == set()
    assert api.client.get("/v1/users/ghost", headers=api.app).status_code == 404
    assert api.client.get("/v1/videos/nope", headers=api.app).status_code == 404
    assert_healthy(api)


def test_auto_create_users_setting_creates_the_user(settings: Settings) -> None:
    auto = with_settings(settings, ingest={"auto_create_users": True})
    with serve(auto) as api:
        seed(api.store)
        r = post(api, [event("e1", user_id="newcomer")])
        assert_ingest(r, 200, stored=1, rejected=[])
        assert api.store.get_user("newcomer") is not None
        user = api.client.get("/v1/users/newcomer", headers=api.app)
        assert user.status_code == 200
        assert user.json()["id"] == "newcomer"
        # videos are never made up, even so
        r = post(api, [event("e2", user_id="newcomer", video_id="nope")])
        assert_ingest(r, 422, stored=0)
        assert api.store.get_video("nope") is None


# -- bad input: each a clear 4xx, nothing stored, server still healthy -----------------------


@pytest.mark.parametrize(
    "raw", [b"{bad json", b"", b'{"events": [', b"[1, 2,]", b"\xff\xfe", b"NaN"]
)
def test_malformed_json_is_400(api: Api, raw: bytes) -> None:
    r = api.client.post(
        "/v1/events", content=raw, headers={**api.app, "Content-Type": "application/json"}
    )
    error = assert_error(r, 400, "malformed_json")
    assert "not valid JSON" in error["message"]
    assert api.store.count_events() == 0
    assert_healthy(api)


@pytest.mark.parametrize(
    "body", [3, "events", None, True, {}, {"events": 7}, {"events": {"0": {}}}, {"evnts": []}]
)
def test_body_that_is_not_an_event_list_is_422(api: Api, body: Any) -> None:
    r = api.client.post(
        "/v1/events",
        content=orjson.dumps(body),
        headers={**api.app, "Content-Type": "application/json"},
    )
    assert_error(r, 422, "invalid_batch")
    assert api.store.count_events() == 0
    assert_healthy(api)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"watch_ms": "long", "type": "play"}, "watch_ms"),
        ({"user_id": 17}, "user_id"),
        ({"video_id": ["v1"]}, "video_id"),
        ({"ts": {"when": "now"}}, "ts"),
        ({"extra": "not an object"}, "extra"),
        ({"type": "wave"}, "type"),
        ({"type": "play", "watch_ms": -1}, "watch_ms"),
        ({"event_id": None}, "event_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_event_is_rejected_by_index_with_the_field_named(
    api: Api, fields: dict[str, Any], field: str
) -> None:
    r = post(api, {"events": [event("bad", **fields)]})
    body = assert_ingest(r, 422, received=1, stored=0, duplicates=0)
    [rejection] = body["rejected"]
    assert rejection["index"] == 0
    assert rejection["reason"].startswith(f"{field}: "), rejection
    assert api.store.count_events() == 0
    assert_healthy(api)


def test_unknown_event_type_lists_the_known_ones(api: Api) -> None:
    body = post(api, [event("x", type="teleport")]).json()
    reason = body["rejected"][0]["reason"]
    assert reason.startswith("type: ")
    assert "'play'" in reason
    assert "'not_interested'" in reason


def test_play_without_watch_ms_is_rejected(api: Api) -> None:
    body = assert_ingest(post(api, [event("p", type="play")]), 422, stored=0)
    assert body["rejected"] == [{"index": 0, "id": "p", "reason": "a play event needs watch_ms"}]
    assert api.store.count_events() == 0


def test_ts_too_far_in_the_future_is_rejected(api: Api) -> None:
    body = assert_ingest(post(api, [event("f", ts="2999-01-01T00:00:00Z")]), 422, stored=0)
    assert body["rejected"] == [
        {"index": 0, "id": "f", "reason": "ts is further in the future than the server allows"}
    ]
    assert api.store.count_events() == 0
    assert_healthy(api)


def test_a_batch_of_1000_is_accepted(api: Api) -> None:
    r = post(api, [event(f"e{i}") for i in range(1000)])
    assert_ingest(r, 200, received=1000, stored=1000, rejected=[])
    assert api.store.count_events() == 1000


def test_a_batch_of_1001_is_413_and_stores_nothing(api: Api) -> None:
    r = post(api, {"events": [event(f"e{i}") for i in range(1001)]})
    error = assert_error(r, 413, "batch_too_large")
    assert "1000" in error["message"]
    assert "1001" in error["message"]
    assert api.store.count_events() == 0
    assert_healthy(api)


def test_missing_key_is_401_and_stores_nothing(api: Api) -> None:
    r = api.client.post("/v1/events", json=[event("e1")])
    assert_error(r, 401, "unauthorized")
    assert api.store.count_events() == 0
    assert_healthy(api)


def test_wrong_key_is_401_and_stores_nothing(api: Api) -> None:
    r = api.client.post(
        "/v1/events", json=[event("e1")], headers={"Authorization": "Bearer fyp_wrong"}
    )
    assert_error(r, 401, "unauthorized")
    assert api.store.count_events() == 0
    assert_healthy(api)


def test_wrong_scope_is_403_and_stores_nothing(api: Api) -> None:
    # The event key cannot write the catalog: its videos batch is refused whole.
    videos = {"videos": [{"id": "v9", "creator_id": "c1"}]}
    r = api.client.post("/v1/videos", json=videos, headers=api.app)
    assert_error(r, 403, "forbidden")
    assert api.store.get_video("v9") is None
    assert api.store.count_events() == 0
    assert_healthy(api)


def test_admin_key_may_post_events(api: Api) -> None:
    r = api.client.post("/v1/events", json=[event("e1")], headers=api.admin)
    assert_ingest(r, 200, stored=1)


# -- request body size -----------------------------------------------------------------------


def _padded(size: int) -> bytes:
    """A valid one-event batch padded with spaces to exactly ``size`` bytes."""
    body = orjson.dumps({"events": [event("pad")]})
    assert len(body) <= size
    return body + b" " * (size - len(body))


def test_body_at_the_limit_is_accepted(small: Api) -> None:
    r = small.client.post("/v1/events", content=_padded(1024), headers=small.app)
    assert_ingest(r, 200, stored=1)


def test_body_over_the_limit_is_413_and_stores_nothing(small: Api) -> None:
    r = small.client.post("/v1/events", content=_padded(1025), headers=small.app)
    error = assert_error(r, 413, "too_large")
    assert "1024" in error["message"]
    assert small.store.count_events() == 0
    assert_healthy(small)


def test_many_small_events_over_the_byte_limit_are_413(small: Api) -> None:
    r = small.client.post("/v1/events", json=[event(f"e{i}") for i in range(20)], headers=small.app)
    assert_error(r, 413, "too_large")
    assert small.store.count_events() == 0
    assert_healthy(small)


def test_chunked_body_over_the_limit_is_413(small: Api) -> None:
    body = _padded(4000)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    r = small.client.post("/v1/events", content=chunks(), headers=small.app)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_error(r, 413, "too_large")
    assert small.store.count_events() == 0
    assert_healthy(small)


def test_chunked_body_under_the_limit_is_accepted(small: Api) -> None:
    body = _padded(900)

    def chunks() -> Iterator[bytes]:
        yield body[:450]
        yield body[450:]

    r = small.client.post("/v1/events", content=chunks(), headers=small.app)
    assert_ingest(r, 200, stored=1)


def events_scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    """An ASGI scope for ``POST /v1/events`` with these headers, for driving the app directly."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "root_path": "",
        "query_string": b"",
        "headers": list(headers),
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


def test_oversized_chunked_body_is_refused_before_it_is_all_read(
    small: Api, settings: Settings
) -> None:
    """Straight at the ASGI app: the body arrives in 512-byte chunks with no length."""
    app = create_app(with_settings(settings, api={"max_body_bytes": 1024}), small.services)
    total_chunks = 50
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        if pulled > total_chunks:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b" " * 512, "more_body": pulled < total_chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    auth = small.app["Authorization"].encode()
    scope = events_scope((b"authorization", auth), (b"transfer-encoding", b"chunked"))
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]

    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [413]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert orjson.loads(body)["error"]["code"] == "too_large"
    assert pulled == 3  # 1,536 bytes crossed the limit: the other 47 chunks were never read
    assert small.store.count_events() == 0
    assert_healthy(small)


def test_a_client_that_hangs_up_mid_body_stores_nothing_and_logs_no_error(
    api: Api, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Straight at the ASGI app: half a batch arrives, then the client disconnects."""
    app = create_app(settings, api.services)
    half = orjson.dumps({"events": [event("e1")]})[:20]
    messages: Iterator[dict[str, Any]] = iter(
        [{"type": "http.request", "body": half, "more_body": True}, {"type": "http.disconnect"}]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = events_scope((b"authorization", api.app["Authorization"].encode()))
    with caplog.at_level("INFO"):
        asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
    assert any("client disconnected" in r.getMessage() for r in caplog.records)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [400]
    assert api.store.count_events() == 0
    assert_healthy(api)


# -- the docs say what the body is -----------------------------------------------------------


def test_events_request_body_is_documented(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    op = spec["paths"]["/v1/events"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    items = schema["properties"]["events"]["items"]
    assert schema["properties"]["events"]["maxItems"] == 1000
    assert {"event_id", "user_id", "type", "ts"} <= set(items["required"])
    assert "watch_ms" in items["properties"]
    assert "play" in items["properties"]["type"]["enum"]
    assert {"200", "422"} <= set(op["responses"])
