"""The catalog and graph API: users, videos, bulk upserts, moderation, follows, blocks, comments."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.support import assert_error, assert_healthy, seed
from tests.conftest import Api

BULK_KEYS = {"received", "stored", "rejected"}


@pytest.fixture
def api(api: Api) -> Api:
    seed(api.store)
    return api


def put_video(api: Api, video_id: str, **fields: Any) -> Any:
    return api.client.put(f"/v1/videos/{video_id}", json=fields, headers=api.admin)


# -- users -----------------------------------------------------------------------------------


def test_put_and_get_a_user(api: Api) -> None:
    body = {
        "region": "gb",
        "language": "EN-gb",
        "birth_year": 1999,
        "age_band": "25_34",
        "interests": ["#Cooking", "cooking", " Travel "],
        "created_at": "2025-01-02T03:04:05Z",
    }
    r = api.client.put("/v1/users/alice", json=body, headers=api.admin)
    assert r.status_code == 200, r.text
    expected = {
        "id": "alice",
        "region": "GB",
        "language": "en-gb",
        "birth_year": 1999,
        "age_band": "25_34",
        "interests": ["cooking", "travel"],
        "created_at": "2025-01-02T03:04:05Z",
    }
    assert r.json() == expected
    got = api.client.get("/v1/users/alice", headers=api.app)
    assert got.status_code == 200
    assert got.json() == expected


def test_replacing_a_user_keeps_its_first_created_at(api: Api) -> None:
    first = {"created_at": "2025-01-01T00:00:00Z", "interests": ["a"]}
    api.client.put("/v1/users/bob", json=first, headers=api.admin)
    second = {"created_at": "2025-06-01T00:00:00Z", "region": "DE"}
    r = api.client.put("/v1/users/bob", json=second, headers=api.admin)
    assert r.status_code == 200
    assert r.json()["created_at"] == "2025-01-01T00:00:00Z"
    assert r.json()["region"] == "DE"
    assert r.json()["interests"] == []  # a PUT replaces the whole user


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"birth_year": "old"}, "birth_year"),
        ({"birth_year": 1800}, "birth_year"),
        ({"age_band": "teen"}, "age_band"),
        ({"region": "not a region"}, "region"),
        ({"interests": ["two words"]}, "interests"),
        ({"id": "other"}, "id"),
    ],
)
def test_invalid_user_is_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    r = api.client.put("/v1/users/carol", json=body, headers=api.admin)
    error = assert_error(r, 422, "invalid_request")
    assert field in error["message"]
    assert any(d["loc"][:2] == ["body", field] for d in error["details"]), error
    assert api.store.get_user("carol") is None


def test_unknown_user_is_404(api: Api) -> None:
    assert_error(api.client.get("/v1/users/nobody", headers=api.app), 404, "not_found")


def test_bulk_users_report_rejections_by_index(api: Api) -> None:
    users = [
        {"id": "b1", "interests": ["#Dance"]},
        {"id": "b2", "birth_year": 3000},
        "not a user",
        {"region": "US"},
        {"id": "b3", "surprise": True},
        {"id": "b4"},
    ]
    r = api.client.post("/v1/users", json={"users": users}, headers=api.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == BULK_KEYS
    assert (body["received"], body["stored"]) == (6, 2)
    rejected = body["rejected"]
    assert [(x["index"], x["id"]) for x in rejected] == [(1, "b2"), (2, None), (3, None), (4, "b3")]
    assert rejected[0]["reason"].startswith("birth_year: ")
    assert rejected[2]["reason"].startswith("id: ")
    assert rejected[3]["reason"].startswith("surprise: ")
    b1 = api.store.get_user("b1")
    assert b1 is not None
    assert b1.interests == ["dance"]
    assert api.store.get_user("b4") is not None
    assert api.store.existing_user_ids({"b2", "b3"}) == set()


def test_bulk_users_all_rejected_is_422(api: Api) -> None:
    r = api.client.post("/v1/users", json={"users": [{"id": ""}]}, headers=api.admin)
    assert r.status_code == 422
    assert r.json()["stored"] == 0
    assert [x["index"] for x in r.json()["rejected"]] == [0]


# -- videos ----------------------------------------------------------------------------------


def test_put_and_get_a_video_with_hashtags_normalised_and_merged(api: Api) -> None:
    r = put_video(
        api,
        "vid1",
        creator_id="c1",
        caption="Weekend #Baking with #friends and #baking",
        hashtags=["#Food", " baking ", "FOOD"],
        sound_id="s1",
        duration_ms=15_000,
        language="EN",
        region="us",
    )
    assert r.status_code == 200, r.text
    video = r.json()
    assert video["hashtags"] == ["food", "baking", "friends"]
    assert (video["creator_id"], video["sound_id"], video["duration_ms"]) == ("c1", "s1", 15_000)
    assert (video["language"], video["region"]) == ("en", "US")
    assert video["moderation"] == "approved"  # the configured default
    got = api.client.get("/v1/videos/vid1", headers=api.app)
    assert got.status_code == 200
    assert got.json() == video


def test_video_with_unknown_creator_is_422_with_the_reason(api: Api) -> None:
    r = put_video(api, "vid2", creator_id="stranger")
    error = assert_error(r, 422, "invalid_video")
    assert "unknown creator 'stranger'" in error["message"]
    assert api.store.get_video("vid2") is None


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"duration_ms": 0}, "duration_ms"),
        ({"parent_video_id": "v1"}, "parent_video_id and parent_kind go together"),
        ({"parent_video_id": "vid3", "parent_kind": "duet"}, "its own parent"),
        ({"moderation": "deleted"}, "moderation"),
        ({"media_url": "ftp://x"}, "media_url"),
        ({"creator_id": None}, "creator_id"),
    ],
)
def test_invalid_video_is_422(api: Api, fields: dict[str, Any], fragment: str) -> None:
    r = put_video(api, "vid3", **{"creator_id": "c1", **fields})
    assert r.status_code == 422, r.text
    assert fragment in r.json()["error"]["message"]
    assert api.store.get_video("vid3") is None


def test_replacing_a_video_without_a_state_keeps_its_moderation(api: Api) -> None:
    put_video(api, "vid4", creator_id="c1", created_at="2025-01-01T00:00:00Z")
    r = api.client.post(
        "/v1/videos/vid4/moderation", json={"state": "removed", "reason": "spam"}, headers=api.admin
    )
    assert r.status_code == 200
    again = put_video(api, "vid4", creator_id="c1", caption="new caption")
    assert again.status_code == 200
    assert again.json()["moderation"] == "removed"
    assert again.json()["caption"] == "new caption"
    assert again.json()["created_at"] == "2025-01-01T00:00:00Z"
    named = put_video(api, "vid4", creator_id="c1", moderation="approved")
    assert named.json()["moderation"] == "approved"


def test_bulk_videos_report_rejections_by_index(api: Api) -> None:
    videos = [
        {"id": "bv1", "creator_id": "c1", "caption": "#Hi"},
        {"id": "bv2", "creator_id": "nobody"},
        {"id": "bv3", "creator_id": "c1", "duration_ms": -5},
        ["not", "a", "video"],
        {"id": "bv4", "creator_id": "u1", "moderation": "pending"},
    ]
    r = api.client.post("/v1/videos", json={"videos": videos}, headers=api.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == BULK_KEYS
    assert (body["received"], body["stored"]) == (5, 2)
    rejected = body["rejected"]
    assert [(x["index"], x["id"]) for x in rejected] == [(1, "bv2"), (2, "bv3"), (3, None)]
    assert "unknown creator 'nobody'" in rejected[0]["reason"]
    assert rejected[1]["reason"].startswith("duration_ms: ")
    bv1 = api.store.get_video("bv1")
    assert bv1 is not None
    assert bv1.hashtags == ["hi"]
    bv4 = api.store.get_video("bv4")
    assert bv4 is not None
    assert bv4.moderation == "pending"
    assert api.store.get_video("bv2") is None


@pytest.mark.parametrize("kind", ["users", "videos"])
def test_bulk_over_1000_items_is_413_and_stores_nothing(api: Api, kind: str) -> None:
    items = [{"id": f"x{i}", "creator_id": "c1"} for i in range(1001)]
    if kind == "users":
        items = [{"id": f"x{i}"} for i in range(1001)]
    r = api.client.post(f"/v1/{kind}", json={kind: items}, headers=api.admin)
    error = assert_error(r, 413, "batch_too_large")
    assert "1001" in error["message"]
    assert api.store.get_user("x0") is None
    assert api.store.get_video("x0") is None
    assert_healthy(api)


@pytest.mark.parametrize("kind", ["users", "videos"])
@pytest.mark.parametrize(
    "raw", [b"[]", b"{}", b'{"items": []}', b"7", b'{"users": {}, "videos": 1}']
)
def test_bulk_body_must_be_an_object_with_a_list(api: Api, kind: str, raw: bytes) -> None:
    r = api.client.post(f"/v1/{kind}", content=raw, headers=api.admin)
    error = assert_error(r, 422, "invalid_batch")
    assert kind in error["message"]


@pytest.mark.parametrize("kind", ["users", "videos"])
def test_bulk_malformed_json_is_400(api: Api, kind: str) -> None:
    r = api.client.post(f"/v1/{kind}", content=b'{"users": [', headers=api.admin)
    assert_error(r, 400, "malformed_json")
    assert_healthy(api)


def test_video_list_pages_with_next(api: Api) -> None:
    for i in range(5):
        put_video(api, f"p{i}", creator_id="c1")
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if after is not None:
            params["after"] = after
        r = api.client.get("/v1/videos", params=params, headers=api.app)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"videos", "next"}
        ids = [v["id"] for v in page["videos"]]
        assert len(ids) <= 2
        seen += ids
        pages += 1
        if page["next"] is None:
            break
        assert page["next"] == ids[-1]
        after = page["next"]
    assert seen == sorted(["v1", "v2", "p0", "p1", "p2", "p3", "p4"])
    assert pages == 4  # 2 + 2 + 2 + 1


def test_video_list_filters(api: Api) -> None:
    api.client.put("/v1/users/c2", json={}, headers=api.admin)
    put_video(api, "w1", creator_id="c2")
    put_video(api, "w2", creator_id="c2", moderation="pending")
    by_creator = api.client.get("/v1/videos", params={"creator_id": "c2"}, headers=api.app).json()
    assert [v["id"] for v in by_creator["videos"]] == ["w1", "w2"]
    assert by_creator["next"] is None
    pending = api.client.get("/v1/videos", params={"moderation": "pending"}, headers=api.app)
    assert [v["id"] for v in pending.json()["videos"]] == ["w2"]


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 1001}, {"limit": "many"}, {"moderation": "gone"}]
)
def test_video_list_bad_query_is_422(api: Api, params: dict[str, Any]) -> None:
    r = api.client.get("/v1/videos", params=params, headers=api.app)
    error = assert_error(r, 422, "invalid_request")
    assert error["details"][0]["loc"][0] == "query"


# -- moderation ------------------------------------------------------------------------------


def test_moderation_change(api: Api) -> None:
    r = api.client.post(
        "/v1/videos/v1/moderation",
        json={"state": "limited", "reason": "regional rules", "allowed_regions": ["us", "gb"]},
        headers=api.admin,
    )
    assert r.status_code == 200, r.text
    video = r.json()
    assert (video["id"], video["moderation"]) == ("v1", "limited")
    assert video["moderation_reason"] == "regional rules"
    assert video["allowed_regions"] == ["US", "GB"]
    stored = api.store.get_video("v1")
    assert stored is not None
    assert stored.moderation == "limited"
    listed = api.client.get("/v1/videos", params={"moderation": "limited"}, headers=api.app)
    assert [v["id"] for v in listed.json()["videos"]] == ["v1"]


def test_moderation_needs_admin_and_a_known_video_and_state(api: Api) -> None:
    body = {"state": "removed"}
    assert_error(
        api.client.post("/v1/videos/v1/moderation", json=body, headers=api.app), 403, "forbidden"
    )
    stored = api.store.get_video("v1")
    assert stored is not None
    assert stored.moderation == "approved"
    assert_error(
        api.client.post("/v1/videos/nope/moderation", json=body, headers=api.admin),
        404,
        "not_found",
    )
    bad = api.client.post("/v1/videos/v1/moderation", json={"state": "gone"}, headers=api.admin)
    assert_error(bad, 422, "invalid_request")


# -- follows and blocks ----------------------------------------------------------------------


@pytest.mark.parametrize(("edge", "key"), [("following", "following"), ("blocks", "blocked")])
def test_edges_put_get_delete(api: Api, edge: str, key: str) -> None:
    url = f"/v1/users/u1/{edge}/c1"
    assert api.client.put(url, headers=api.admin).status_code == 204
    assert api.client.put(url, headers=api.admin).status_code == 204  # idempotent
    assert api.client.put(f"/v1/users/u1/{edge}/u2", headers=api.admin).status_code == 204
    got = api.client.get(f"/v1/users/u1/{edge}", headers=api.app)
    assert got.status_code == 200
    assert got.json() == {key: ["c1", "u2"]}
    assert api.client.get(f"/v1/users/u2/{edge}", headers=api.app).json() == {key: []}
    assert api.client.delete(url, headers=api.admin).status_code == 204
    assert api.client.delete(url, headers=api.admin).status_code == 204  # already gone: fine
    assert api.client.get(f"/v1/users/u1/{edge}", headers=api.app).json() == {key: ["u2"]}


def test_follow_and_block_are_separate_graphs(api: Api) -> None:
    api.client.put("/v1/users/u1/blocks/c1", headers=api.admin)
    assert api.store.following("u1") == []
    assert api.store.blocked("u1") == ["c1"]


@pytest.mark.parametrize("edge", ["following", "blocks"])
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_edges_with_unknown_users_are_404(api: Api, edge: str, method: str) -> None:
    for path in (f"/v1/users/ghost/{edge}/c1", f"/v1/users/u1/{edge}/ghost"):
        error = assert_error(api.client.request(method, path, headers=api.admin), 404, "not_found")
        assert "ghost" in error["message"]
    assert_error(api.client.get(f"/v1/users/ghost/{edge}", headers=api.app), 404, "not_found")
    assert api.store.following("u1") == []
    assert api.store.blocked("u1") == []
    assert api.store.get_user("ghost") is None


@pytest.mark.parametrize("edge", ["following", "blocks"])
def test_self_edge_is_422(api: Api, edge: str) -> None:
    r = api.client.put(f"/v1/users/u1/{edge}/u1", headers=api.admin)
    error = assert_error(r, 422, "invalid_edge")
    assert "themselves" in error["message"]
    assert api.store.following("u1") == []
    assert api.store.blocked("u1") == []


# -- comments --------------------------------------------------------------------------------


def test_comments_post_and_get_newest_first(api: Api) -> None:
    first = api.client.post(
        "/v1/videos/v1/comments",
        json={"user_id": "u1", "text": "first!", "created_at": "2026-01-01T00:00:00Z"},
        headers=api.admin,
    )
    assert first.status_code == 201, first.text
    made = first.json()
    assert made["id"]
    assert (made["video_id"], made["user_id"], made["text"]) == ("v1", "u1", "first!")
    second = api.client.post(
        "/v1/videos/v1/comments",
        json={"id": "cm2", "user_id": "u2", "text": "later", "created_at": "2026-01-02T00:00:00Z"},
        headers=api.admin,
    )
    assert second.status_code == 201
    assert second.json()["id"] == "cm2"
    got = api.client.get("/v1/videos/v1/comments", headers=api.app)
    assert got.status_code == 200
    assert [c["text"] for c in got.json()["comments"]] == ["later", "first!"]
    limited = api.client.get("/v1/videos/v1/comments", params={"limit": 1}, headers=api.app)
    assert [c["id"] for c in limited.json()["comments"]] == ["cm2"]
    assert api.client.get("/v1/videos/v2/comments", headers=api.app).json() == {"comments": []}


def test_comment_retry_with_the_same_id_is_stored_once(api: Api) -> None:
    body = {"id": "cm1", "user_id": "u1", "text": "hello"}
    for _ in range(2):
        r = api.client.post("/v1/videos/v1/comments", json=body, headers=api.admin)
        assert r.status_code == 201
    assert [c.id for c in api.store.comments("v1")] == ["cm1"]


def test_comment_problems(api: Api) -> None:
    unknown_user = api.client.post(
        "/v1/videos/v1/comments", json={"user_id": "ghost", "text": "hi"}, headers=api.admin
    )
    assert "unknown user 'ghost'" in assert_error(unknown_user, 422, "invalid_comment")["message"]
    unknown_video = api.client.post(
        "/v1/videos/nope/comments", json={"user_id": "u1", "text": "hi"}, headers=api.admin
    )
    assert_error(unknown_video, 404, "not_found")
    empty = api.client.post(
        "/v1/videos/v1/comments", json={"user_id": "u1", "text": ""}, headers=api.admin
    )
    assert_error(empty, 422, "invalid_request")
    assert_error(api.client.get("/v1/videos/nope/comments", headers=api.app), 404, "not_found")
    assert api.store.comments("v1") == []


# -- health, docs, errors --------------------------------------------------------------------


def test_readyz_on_every_backend(api_on: Api) -> None:
    r = api_on.client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    if not api_on.store.url.startswith("memory"):
        assert body["schema"]  # the migration revision the schema is at


def test_docs_and_openapi_are_served(api: Api) -> None:
    docs = api.client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    spec = api.client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert {"/v1/events", "/v1/users", "/v1/videos", "/v1/keys", "/healthz", "/readyz"} <= set(
        paths
    )
    for path, key in (("/v1/users", "users"), ("/v1/videos", "videos")):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"][key]["maxItems"] == 1000
        assert "id" in body["properties"][key]["items"]["required"]
    events = paths["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"event_id", "user_id", "type", "ts"} <= set(
        events["properties"]["events"]["items"]["required"]
    )
    assert "$ref" not in str(events)  # inlined, so the docs render it without $defs


def test_unknown_path_and_method_use_the_error_shape(api: Api) -> None:
    assert_error(api.client.get("/v1/nothing-here", headers=api.app), 404, "not_found")
    assert_error(api.client.delete("/v1/videos", headers=api.admin), 405, "method_not_allowed")


def test_text_with_a_nul_character_is_stored_or_refused_cleanly(api_on: Api) -> None:
    # PostgreSQL text cannot hold U+0000: the API must answer 200 or a 4xx, not fail.
    seed(api_on.store)
    r = put_video(api_on, "nul", creator_id="c1", caption="a\u0000b")
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        stored = api_on.store.get_video("nul")
        assert stored is not None
        assert stored.caption == "a\u0000b"
    else:
        assert_error(r, 422, r.json()["error"]["code"])
        assert api_on.store.get_video("nul") is None
    assert_healthy(api_on)
