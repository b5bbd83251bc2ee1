"""The DataStore contract (``fyp.storage.data.base``), run against every backend.

The ``store`` fixture is parametrized over memory, SQLite and PostgreSQL; each test gets a
migrated, empty store. SQL backends enforce foreign keys (videos, follows, blocks and comments
need their users and videos), so tests create those first even though memory would not mind.
Times are built at millisecond precision: the SQL backends store epoch milliseconds.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fyp.config import ModerationState
from fyp.models import ApiKey, Comment, Event, EventType, User, VideoBrief, VideoIn
from fyp.storage.data import DataStore, EventRow
from fyp.types import from_ms, now_ms, to_ms

T0 = datetime(2024, 5, 6, 7, 8, 9, 123_000, tzinfo=UTC)
T0_MS = to_ms(T0)


def at(ms: int) -> datetime:
    """A datetime ``ms`` milliseconds after T0."""
    return T0 + timedelta(milliseconds=ms)


def event(
    event_id: str,
    *,
    user_id: str = "u1",
    type: str = "like",
    video_id: str | None = "v1",
    creator_id: str | None = None,
    sound_id: str | None = None,
    hashtag: str | None = None,
    ts_ms: int = T0_MS,
    received_ms: int | None = None,
    watch_ms: int | None = None,
    request_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> EventRow:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "video_id": video_id,
        "creator_id": creator_id,
        "sound_id": sound_id,
        "hashtag": hashtag,
        "type": type,
        "ts_ms": ts_ms,
        "received_ms": ts_ms + 5 if received_ms is None else received_ms,
        "watch_ms": watch_ms,
        "request_id": request_id,
        "extra": extra,
    }


def follow(event_id: str, creator_id: str, ts_ms: int, *, on: bool = True) -> EventRow:
    return event(
        event_id,
        type="follow" if on else "unfollow",
        video_id=None,
        creator_id=creator_id,
        ts_ms=ts_ms,
    )


def video(video_id: str, creator_id: str = "c1", **fields: Any) -> VideoIn:
    return VideoIn(id=video_id, creator_id=creator_id, created_at=T0, **fields)


def users(store: DataStore, *ids: str) -> None:
    store.upsert_users([User(id=u, created_at=T0) for u in ids])


def fields(e: Event) -> dict[str, Any]:
    """An event's field values (model_dump would re-serialise; this reads what was returned)."""
    return {name: getattr(e, name) for name in Event.model_fields}


def logged_ids(store: DataStore) -> list[str]:
    return [e.event_id for _, e in store.read_events()]


# -- users ---------------------------------------------------------------------------------------


def test_user_round_trips_every_field(store: DataStore) -> None:
    user = User(
        id="u1",
        region="gb",
        language="EN-GB",
        birth_year=1990,
        age_band="25_34",
        interests=["#Cats", "cats", " Dogs ", "#dogs", "k-pop"],
        created_at=T0,
    )
    # The model normalises; the store must keep exactly what the model holds.
    assert (user.region, user.language) == ("GB", "en-gb")
    assert user.interests == ["cats", "dogs", "k-pop"]

    assert store.upsert_users([user]) == 1
    got = store.get_user("u1")
    assert got is not None
    assert got.model_dump() == user.model_dump()
    assert store.get_user("nobody") is None


def test_user_with_only_an_id_round_trips(store: DataStore) -> None:
    user = User(id="bare", created_at=T0)
    store.upsert_users([user])
    got = store.get_user("bare")
    assert got is not None
    assert got.model_dump() == user.model_dump()
    assert got.interests == []


def test_reupserting_a_user_replaces_fields_but_keeps_created_at(store: DataStore) -> None:
    store.upsert_users([User(id="u1", region="FR", interests=["a"], created_at=T0)])
    later = User(id="u1", language="de", birth_year=2001, interests=["b", "c"], created_at=at(9999))
    assert store.upsert_users([later]) == 1

    got = store.get_user("u1")
    assert got is not None
    assert got.model_dump() == later.model_copy(update={"created_at": T0}).model_dump()
    assert got.region is None  # replaced, not merged


def test_last_copy_wins_when_a_batch_repeats_an_id(store: DataStore) -> None:
    first = User(id="u1", region="FR", interests=["first"], created_at=T0)
    last = User(id="u1", region="DE", interests=["last"], created_at=at(1))
    other = User(id="u2", created_at=T0)
    assert store.upsert_users([first, other, last]) == 2

    got = store.get_user("u1")
    assert got is not None
    assert got.model_dump() == last.model_dump()
    # And again on an existing row: the last copy's fields, the stored created_at.
    again = [
        User(id="u1", region="IT", created_at=at(50)),
        User(id="u1", region="ES", created_at=at(60)),
    ]
    assert store.upsert_users(again) == 1
    got = store.get_user("u1")
    assert got is not None
    assert (got.region, got.interests, got.created_at) == ("ES", [], at(1))


def test_upserting_no_users_is_a_no_op(store: DataStore) -> None:
    assert store.upsert_users([]) == 0
    assert store.existing_user_ids(["u1"]) == set()


def test_existing_user_ids(store: DataStore) -> None:
    users(store, "u1", "u2", "u3")
    assert store.existing_user_ids({"u1", "u3", "ghost"}) == {"u1", "u3"}
    assert store.existing_user_ids(["ghost"]) == set()
    assert store.existing_user_ids([]) == set()


def test_create_missing_users_leaves_existing_users_untouched(store: DataStore) -> None:
    known = User(id="u1", region="JP", language="ja", interests=["anime"], created_at=T0)
    store.upsert_users([known])
    before = now_ms()

    store.create_missing_users(["u1", "u2", "u3", "u2"])
    store.create_missing_users([])

    assert store.existing_user_ids({"u1", "u2", "u3"}) == {"u1", "u2", "u3"}
    got = store.get_user("u1")
    assert got is not None
    assert got.model_dump() == known.model_dump()
    bare = store.get_user("u2")
    assert bare is not None
    assert (bare.region, bare.language, bare.birth_year, bare.age_band) == (None,) * 4
    assert bare.interests == []
    assert before - 1000 <= to_ms(bare.created_at) <= now_ms() + 1000


# -- videos --------------------------------------------------------------------------------------


def test_video_round_trips_every_field(store: DataStore) -> None:
    users(store, "c1")
    full = video(
        "v1",
        caption="Hello #Fun world #cats",
        hashtags=["#Cats", "Dance"],
        sound_id="s1",
        duration_ms=15_000,
        language="EN",
        region="us",
        allowed_regions=["gb", "US"],
        parent_video_id="v0",
        parent_kind="duet",
        media_url="https://cdn.example.com/v1.mp4",
        thumbnail_url="https://cdn.example.com/v1.jpg",
    )
    assert full.hashtags == ["cats", "dance", "fun"]
    assert full.allowed_regions == ["GB", "US"]
    sparse = video("v2")  # every nullable field left null

    assert store.upsert_videos([full, sparse], "approved") == 2

    for sent in (full, sparse):
        got = store.get_video(sent.id)
        assert got is not None
        expected = sent.model_dump() | {"moderation": "approved", "moderation_reason": None}
        assert got.model_dump() == expected
    got = store.get_video("v2")
    assert got is not None
    assert got.duration_ms is None
    assert got.allowed_regions is None
    assert (got.parent_video_id, got.parent_kind, got.media_url) == (None, None, None)
    assert store.get_video("ghost") is None


def test_allowed_regions_empty_list_is_not_null(store: DataStore) -> None:
    users(store, "c1")
    store.upsert_videos([video("v1", allowed_regions=[])], "approved")
    got = store.get_video("v1")
    assert got is not None
    assert got.allowed_regions == []


@pytest.mark.parametrize("default", ["pending", "approved"])
def test_new_video_without_state_gets_the_default(
    store: DataStore, default: ModerationState
) -> None:
    users(store, "c1")
    store.upsert_videos([video("v1"), video("v2", moderation="limited")], default)
    v1, v2 = store.get_video("v1"), store.get_video("v2")
    assert v1 is not None and v2 is not None
    assert v1.moderation == default
    assert v2.moderation == "limited"


def test_reupsert_without_state_keeps_moderation_and_reason(store: DataStore) -> None:
    users(store, "c1")
    store.upsert_videos([video("v1", caption="old")], "approved")
    store.set_moderation("v1", "removed", "spam", None)

    store.upsert_videos([video("v1", caption="new", duration_ms=999)], "pending")

    got = store.get_video("v1")
    assert got is not None
    assert (got.moderation, got.moderation_reason) == ("removed", "spam")
    assert (got.caption, got.duration_ms) == ("new", 999)


def test_reupsert_with_state_overwrites_moderation(store: DataStore) -> None:
    users(store, "c1")
    store.upsert_videos([video("v1")], "approved")
    store.set_moderation("v1", "removed", "spam", None)

    store.upsert_videos([video("v1", moderation="limited", allowed_regions=["DE"])], "approved")

    got = store.get_video("v1")
    assert got is not None
    assert got.moderation == "limited"
    assert got.moderation_reason is None  # the old reason belonged to the old state
    assert got.allowed_regions == ["DE"]


def test_reupsert_replaces_fields_and_keeps_created_at(store: DataStore) -> None:
    users(store, "c1", "c2")
    store.upsert_videos(
        [video("v1", caption="a", duration_ms=10, allowed_regions=["GB"], sound_id="s1")],
        "approved",
    )
    replacement = VideoIn(id="v1", creator_id="c2", caption="b", created_at=at(5000))
    store.upsert_videos([replacement], "approved")

    got = store.get_video("v1")
    assert got is not None
    expected = replacement.model_dump() | {
        "created_at": T0,
        "moderation": "approved",
        "moderation_reason": None,
    }
    assert got.model_dump() == expected


def test_video_batch_mixing_given_and_missing_states(store: DataStore) -> None:
    users(store, "c1")
    store.upsert_videos([video("old")], "approved")
    store.set_moderation("old", "limited", "borderline", ["GB"])
    batch = [
        video("old", caption="edit"),
        video("new"),
        video("given", moderation="removed"),
        video("dup", moderation="removed"),
        video("dup", caption="last"),  # last copy wins: no state, new video -> default
    ]
    assert store.upsert_videos(batch, "pending") == 4

    states = {v.id: (v.moderation, v.moderation_reason) for v in store.list_videos()}
    assert states == {
        "dup": ("pending", None),
        "given": ("removed", None),
        "new": ("pending", None),
        "old": ("limited", "borderline"),
    }
    dup = store.get_video("dup")
    assert dup is not None and dup.caption == "last"


def test_video_briefs(store: DataStore) -> None:
    users(store, "c1", "c2")
    store.upsert_videos([video("v1", duration_ms=15_000), video("v2", creator_id="c2")], "approved")
    assert store.video_briefs({"v1", "v2", "ghost"}) == {
        "v1": VideoBrief("c1", 15_000),
        "v2": VideoBrief("c2", None),
    }
    assert store.video_briefs(["ghost"]) == {}
    assert store.video_briefs([]) == {}


def test_get_videos_reads_many_at_once(store: DataStore) -> None:
    """The feed's batched read (on SQLite a raw DBAPI path with the ids as one JSON array) gives
    exactly what the one-video read gives: every field, JSON columns decoded, odd ids intact."""
    users(store, "c1")
    odd = 'v"3\\ü,]'  # JSON- and SQL-special characters in an id
    store.upsert_videos(
        [
            video("v1", caption="one #cats", hashtags=["dogs"], sound_id="s1", duration_ms=9),
            video("v2", caption="two", allowed_regions=["gb", "US"], language="en"),
            video(odd, allowed_regions=[], parent_video_id="v1", parent_kind="duet"),
        ],
        "approved",
    )
    got = store.get_videos(["v2", "ghost", "v1", odd, "v1"])
    assert set(got) == {"v1", "v2", odd}
    for vid, v in got.items():
        single = store.get_video(vid)
        assert single is not None and v.model_dump() == single.model_dump()
    assert got["v1"].hashtags == ["dogs", "cats"] and got["v2"].allowed_regions == ["GB", "US"]
    assert got[odd].allowed_regions == [] and got["v1"].allowed_regions is None
    assert store.get_videos([]) == {}


def test_video_documents_are_the_records_as_json(store: DataStore) -> None:
    """The feed's response shows its served records as ``video_documents`` gives them (on
    SQLite built from the rows without the models): exactly ``model_dump(mode="json")`` of
    ``get_videos``, key order included, for every field and times at any millisecond."""
    users(store, "c1")
    odd = 'v"3\\ü,]'
    store.upsert_videos(
        [
            video("v1", caption="one #cats", hashtags=["dogs"], sound_id="s1", duration_ms=9),
            video("v2", caption="two", allowed_regions=["gb", "US"], language="en", region="de"),
            video(odd, allowed_regions=[], parent_video_id="v1", parent_kind="duet"),
            VideoIn(
                id="v4",
                creator_id="c1",
                created_at=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),  # no fraction of a second
                media_url="https://cdn.example/v4.mp4",
                thumbnail_url="https://cdn.example/v4.jpg",
            ),
            *(
                VideoIn(id=f"t{ms}", creator_id="c1", created_at=from_ms(ms))
                for ms in (0, 1, 999, 1_000, T0_MS + 1, T0_MS + 999, 4_102_444_800_123)
            ),
        ],
        "approved",
    )
    store.set_moderation("v2", "limited", reason="graphic", allowed_regions=["GB"])
    ids = ["v2", "ghost", "v1", odd, "v4", *(f"t{ms}" for ms in (0, 1, 999, 1_000))]
    ids += [f"t{T0_MS + 1}", f"t{T0_MS + 999}", "t4102444800123"]
    docs = store.video_documents([*ids, "v1"])
    want = {k: v.model_dump(mode="json") for k, v in store.get_videos(ids).items()}
    assert docs == want and set(docs) == set(ids) - {"ghost"}
    for k, doc in docs.items():
        assert list(doc) == list(want[k])  # the same key order: the same response bytes
    assert docs["v2"]["moderation"] == "limited" and docs["v2"]["allowed_regions"] == ["GB"]
    assert docs["v4"]["created_at"] == "2024-05-06T07:08:09Z"
    assert store.video_documents([]) == {}


def test_videos_changed_pages_by_update_time(store: DataStore) -> None:
    users(store, "c1", "c2")
    store.upsert_videos([video("a", hashtags=["x"], sound_id="s1")], "approved")
    store.upsert_videos([video("b", creator_id="c2")], "pending")
    store.upsert_videos([video("c")], "approved")
    rows = store.videos_changed(0)
    assert sorted(r.id for r in rows) == ["a", "b", "c"]
    keys = [(r.updated_ms, r.id) for r in rows]
    assert keys == sorted(keys)
    a = next(r for r in rows if r.id == "a")
    assert (a.creator_id, a.hashtags, a.sound_id, a.moderation) == ("c1", ["x"], "s1", "approved")
    # keyset pagination walks the same rows
    walked, after = [], None
    while page := store.videos_changed(0, after=after, limit=2):
        walked.extend(page)
        after = (page[-1].updated_ms, page[-1].id)
    assert walked == rows
    # a moderation change moves the video to the end, at or after every earlier change
    newest = max(r.updated_ms for r in rows)
    time.sleep(0.002)
    store.set_moderation("b", "approved", None, None)
    later = store.videos_changed(newest + 1)
    assert [r.id for r in later] == ["b"] and later[0].moderation == "approved"
    assert store.videos_changed(later[0].updated_ms + 1) == []


def _catalog(store: DataStore) -> None:
    users(store, "c1", "c2")
    # Inserted out of order; "v10" sorts between "v1" and "v2" as a string.
    specs: list[tuple[str, str, ModerationState]] = [
        ("v3", "c1", "approved"),
        ("v10", "c2", "pending"),
        ("v1", "c1", "pending"),
        ("v2", "c2", "approved"),
        ("v4", "c1", "removed"),
    ]
    for vid, creator, state in specs:
        store.upsert_videos([video(vid, creator_id=creator, moderation=state)], "approved")


def _ids(videos: list[Any]) -> list[str]:
    return [v.id for v in videos]


def test_list_videos_orders_by_id_and_limits(store: DataStore) -> None:
    _catalog(store)
    assert _ids(store.list_videos()) == ["v1", "v10", "v2", "v3", "v4"]
    assert _ids(store.list_videos(limit=2)) == ["v1", "v10"]
    full = store.list_videos()
    for v in full:
        got = store.get_video(v.id)
        assert got is not None and got.model_dump() == v.model_dump()


def test_list_videos_keyset_pagination(store: DataStore) -> None:
    _catalog(store)
    assert _ids(store.list_videos(after="v10")) == ["v2", "v3", "v4"]
    assert _ids(store.list_videos(after="v15")) == ["v2", "v3", "v4"]  # need not exist
    assert _ids(store.list_videos(after="v4")) == []
    assert _ids(store.list_videos(after="")) == ["v1", "v10", "v2", "v3", "v4"]

    pages: list[list[str]] = []
    after: str | None = None
    while page := store.list_videos(after=after, limit=2):
        pages.append(_ids(page))
        after = page[-1].id
    assert pages == [["v1", "v10"], ["v2", "v3"], ["v4"]]


def test_list_videos_filters(store: DataStore) -> None:
    _catalog(store)
    assert _ids(store.list_videos(creator_id="c1")) == ["v1", "v3", "v4"]
    assert _ids(store.list_videos(creator_id="c2")) == ["v10", "v2"]
    assert _ids(store.list_videos(creator_id="ghost")) == []
    assert _ids(store.list_videos(moderation="approved")) == ["v2", "v3"]
    assert _ids(store.list_videos(moderation="limited")) == []
    assert _ids(store.list_videos(creator_id="c1", moderation="pending")) == ["v1"]
    # Filters, the cursor and the limit combine: the limit counts matching rows only.
    assert _ids(store.list_videos(creator_id="c1", after="v1", limit=1)) == ["v3"]
    assert _ids(store.list_videos(moderation="approved", after="v2")) == ["v3"]


def test_set_moderation(store: DataStore) -> None:
    users(store, "c1")
    original = video("v1", caption="x #tag", duration_ms=10, allowed_regions=["FR"])
    store.upsert_videos([original], "approved")

    assert store.set_moderation("ghost", "removed", "spam", None) is None
    assert store.get_video("ghost") is None

    limited = store.set_moderation("v1", "limited", "minors", ["GB", "IE"])
    assert limited is not None
    assert (limited.moderation, limited.moderation_reason) == ("limited", "minors")
    assert limited.allowed_regions == ["GB", "IE"]
    stored = store.get_video("v1")
    assert stored is not None and stored.model_dump() == limited.model_dump()

    # allowed_regions=None means "leave them": only state and reason change.
    approved = store.set_moderation("v1", "approved", None, None)
    assert approved is not None
    assert (approved.moderation, approved.moderation_reason) == ("approved", None)
    assert approved.allowed_regions == ["GB", "IE"]
    stored = store.get_video("v1")
    assert stored is not None and stored.model_dump() == approved.model_dump()
    # Everything else is as upserted.
    untouched = {"moderation", "moderation_reason", "allowed_regions"}
    assert stored.model_dump(exclude=untouched) == original.model_dump(exclude=untouched)

    cleared = store.set_moderation("v1", "limited", "r", [])
    assert cleared is not None and cleared.allowed_regions == []


# -- graph ---------------------------------------------------------------------------------------


def test_follow_on_off_and_idempotent(store: DataStore) -> None:
    users(store, "u1", "u2", "c1", "c2")
    assert store.following("u1") == []

    store.set_follow("u1", "c2", True, T0_MS)
    store.set_follow("u1", "c1", True, T0_MS + 1)
    store.set_follow("u1", "c1", True, T0_MS + 2)  # repeat: no error, no duplicate
    assert sorted(store.following("u1")) == ["c1", "c2"]
    assert len(store.following("u1")) == 2
    assert store.following("u2") == []
    assert store.blocked("u1") == []  # follows and blocks are separate edges

    store.set_follow("u1", "c1", False, T0_MS + 3)
    store.set_follow("u1", "c1", False, T0_MS + 4)  # repeat off: harmless
    store.set_follow("u2", "c2", False, T0_MS + 5)  # never followed: harmless
    assert store.following("u1") == ["c2"]

    store.set_follow("u1", "c1", True, T0_MS + 6)  # on again after off
    assert sorted(store.following("u1")) == ["c1", "c2"]


def test_block_on_off_and_idempotent(store: DataStore) -> None:
    users(store, "u1", "u2", "c1", "c2")
    assert store.blocked("u1") == []

    store.set_block("u1", "c1", True, T0_MS)
    store.set_block("u1", "c1", True, T0_MS + 1)
    store.set_block("u1", "c2", True, T0_MS + 2)
    store.set_follow("u1", "c1", True, T0_MS + 3)
    assert sorted(store.blocked("u1")) == ["c1", "c2"]
    assert len(store.blocked("u1")) == 2
    assert store.blocked("u2") == []

    store.set_block("u1", "c2", False, T0_MS + 4)
    store.set_block("u1", "c2", False, T0_MS + 5)
    assert store.blocked("u1") == ["c1"]
    assert store.following("u1") == ["c1"]  # unaffected by blocks

    store.set_follow("u1", "c1", False, T0_MS + 6)
    assert store.blocked("u1") == ["c1"]  # unaffected by follows


# -- comments ------------------------------------------------------------------------------------


def _comment(cid: str, ms: int, video_id: str = "v1", text: str = "hi") -> Comment:
    return Comment(id=cid, video_id=video_id, user_id="u1", text=text, created_at=at(ms))


def test_add_comment_is_idempotent_by_id(store: DataStore) -> None:
    users(store, "u1", "c1")
    store.upsert_videos([video("v1")], "approved")
    first = _comment("k1", 0, text="first")

    assert store.add_comment(first) is True
    assert store.add_comment(first) is False
    assert store.add_comment(_comment("k1", 10, text="retry with new text")) is False

    assert [c.model_dump() for c in store.comments("v1")] == [first.model_dump()]


def test_comments_newest_first_with_limit(store: DataStore) -> None:
    users(store, "u1", "c1")
    store.upsert_videos([video("v1"), video("v2")], "approved")
    for cid, ms in [("k2", 200), ("k1", 100), ("k4", 400), ("k3", 300)]:
        assert store.add_comment(_comment(cid, ms))
    assert store.add_comment(_comment("other", 500, video_id="v2"))

    newest = store.comments("v1")
    assert [c.id for c in newest] == ["k4", "k3", "k2", "k1"]
    assert [c.created_at for c in newest] == [at(400), at(300), at(200), at(100)]
    assert newest[0].model_dump() == _comment("k4", 400).model_dump()
    assert [c.id for c in store.comments("v1", limit=2)] == ["k4", "k3"]
    assert [c.id for c in store.comments("v2")] == ["other"]
    assert store.comments("ghost") == []


# -- event log -----------------------------------------------------------------------------------


def test_append_events_returns_only_newly_stored_ids(store: DataStore) -> None:
    assert store.append_events([]) == []
    assert sorted(store.append_events([event("e1"), event("e2")])) == ["e1", "e2"]
    assert store.count_events() == 2

    # Re-appending the same rows stores nothing.
    assert store.append_events([event("e1"), event("e2")]) == []
    # A mixed batch returns the new ids only.
    assert sorted(store.append_events([event("e2"), event("e3"), event("e1")])) == ["e3"]
    assert store.count_events() == 3
    assert logged_ids(store) == ["e1", "e2", "e3"]


def test_duplicates_within_one_call_are_stored_once(store: DataStore) -> None:
    stored = store.append_events([event("a"), event("b"), event("a"), event("a"), event("c")])
    assert sorted(stored) == ["a", "b", "c"]
    assert store.count_events() == 3
    assert sorted(logged_ids(store)) == ["a", "b", "c"]


def test_a_duplicate_does_not_overwrite_the_stored_event(store: DataStore) -> None:
    store.append_events([event("e1", type="like", ts_ms=T0_MS)])
    store.append_events([event("e1", type="share", ts_ms=T0_MS + 99)])
    got = store.get_event("e1")
    assert got is not None
    assert (got.type, got.ts) == ("like", T0)


def test_get_event_round_trips_every_field(store: DataStore) -> None:
    extra = {
        "screen": "fyp",
        "pos": 3,
        "score": 0.25,
        "ok": True,
        "tags": ["a", "b", 1],
        "nested": {"x": None, "y": {"z": [1.5, -2]}},
        "unicode": "café ✓",
    }
    row = event(
        "e1",
        user_id="u9",
        type="play",
        video_id="v7",
        creator_id="c3",
        ts_ms=T0_MS + 1,
        received_ms=T0_MS + 777,
        watch_ms=12_345,
        request_id="req-1",
        extra=extra,
    )
    not_interested = event(
        "e2",
        type="not_interested",
        video_id=None,
        sound_id="s5",
        hashtag="cats",
        ts_ms=T0_MS + 2,
    )
    store.append_events([row, not_interested])

    got = store.get_event("e1")
    assert got is not None
    assert fields(got) == {
        "event_id": "e1",
        "user_id": "u9",
        "type": "play",
        "ts": from_ms(T0_MS + 1),
        "video_id": "v7",
        "creator_id": "c3",
        "sound_id": None,
        "hashtag": None,
        "watch_ms": 12_345,
        "request_id": "req-1",
        "extra": extra,
        "received_at": from_ms(T0_MS + 777),
    }
    second = store.get_event("e2")
    assert second is not None
    assert fields(second) == {
        "event_id": "e2",
        "user_id": "u1",
        "type": "not_interested",
        "ts": from_ms(T0_MS + 2),
        "video_id": None,
        "creator_id": None,
        "sound_id": "s5",
        "hashtag": "cats",
        "watch_ms": None,
        "request_id": None,
        "extra": None,
        "received_at": from_ms(T0_MS + 7),
    }
    assert store.get_event("ghost") is None


def test_stored_events_keep_their_declared_types(store: DataStore) -> None:
    """``Event.type`` is an ``EventType``: code reading the log may use ``.value`` on it."""
    store.append_events([event("e1", type="play", watch_ms=1), event("e2", type="follow")])
    got = store.get_event("e1")
    assert got is not None
    assert isinstance(got.type, EventType)
    assert got.type is EventType.play
    logged = [e for _, e in store.read_events()]
    assert [e.type for e in logged] == [EventType.play, EventType.follow]
    assert all(isinstance(e.type, EventType) for e in logged)


def test_watch_ms_zero_is_not_null(store: DataStore) -> None:
    store.append_events([event("e1", type="play", watch_ms=0)])
    got = store.get_event("e1")
    assert got is not None
    assert got.watch_ms == 0


def test_count_events(store: DataStore) -> None:
    assert store.count_events() == 0
    store.append_events([event(f"e{i}") for i in range(7)])
    assert store.count_events() == 7
    store.append_events([event("e0"), event("e7")])
    assert store.count_events() == 8


def test_read_events_in_log_order_with_paging(store: DataStore) -> None:
    assert store.read_events() == []
    # Log order is append order, not ts order.
    store.append_events([event("b", ts_ms=T0_MS + 50), event("a", ts_ms=T0_MS + 10)])
    store.append_events([event("a"), event("d", ts_ms=T0_MS + 1), event("c", ts_ms=T0_MS + 99)])
    store.append_events([event("e", ts_ms=T0_MS)])

    log = store.read_events()
    seqs = [seq for seq, _ in log]
    assert [e.event_id for _, e in log] == ["b", "a", "d", "c", "e"]
    assert all(s > 0 for s in seqs)
    assert all(x < y for x, y in itertools.pairwise(seqs)), seqs
    assert log[0][1].ts == at(50)

    assert [e.event_id for _, e in store.read_events(after_seq=seqs[1])] == ["d", "c", "e"]
    assert [e.event_id for _, e in store.read_events(after_seq=seqs[-1])] == []
    assert [e.event_id for _, e in store.read_events(limit=2)] == ["b", "a"]

    paged: list[tuple[int, Any]] = []
    cursor = 0
    while page := store.read_events(after_seq=cursor, limit=2):
        assert len(page) <= 2
        paged.extend(page)
        cursor = page[-1][0]
    assert [(s, e.event_id) for s, e in paged] == [(s, e.event_id) for s, e in log]

    # Sequence numbers are stable: appending more does not renumber earlier events.
    store.append_events([event("f")])
    again = store.read_events()
    assert [s for s, _ in again[:5]] == seqs
    assert again[5][0] > seqs[-1]
    assert [e.event_id for _, e in store.read_events(after_seq=seqs[-1])] == ["f"]


def test_follow_events_update_the_graph_in_ts_order(store: DataStore) -> None:
    users(store, "u1", "c1", "c2", "c3")
    # Sent out of order: the unfollow comes first in the batch but happened earlier.
    stored = store.append_events(
        [
            follow("f1", "c1", T0_MS + 200),
            follow("f2", "c1", T0_MS + 100, on=False),
            follow("f3", "c2", T0_MS + 400, on=False),
            follow("f4", "c2", T0_MS + 300),
            follow("f5", "c3", T0_MS + 500),
        ]
    )
    assert sorted(stored) == ["f1", "f2", "f3", "f4", "f5"]
    assert sorted(store.following("u1")) == ["c1", "c3"]

    store.append_events([follow("f6", "c3", T0_MS + 600, on=False)])
    assert sorted(store.following("u1")) == ["c1"]


def test_events_without_a_creator_or_of_other_types_leave_the_graph(store: DataStore) -> None:
    users(store, "u1", "c1")
    store.append_events(
        [
            event("x1", type="follow", creator_id=None),  # follow by video, creator unresolved
            event("x2", type="profile_visit", video_id=None, creator_id="c1"),
            event("x3", type="like", creator_id="c1"),
            event("x4", type="not_interested", video_id=None, creator_id="c1"),
        ]
    )
    assert store.count_events() == 4
    assert store.following("u1") == []

    store.set_follow("u1", "c1", True, T0_MS)
    store.append_events([event("x5", type="unfollow", creator_id=None)])
    assert store.following("u1") == ["c1"]


def test_a_duplicate_follow_event_does_not_reapply(store: DataStore) -> None:
    users(store, "u1", "c1")
    assert store.append_events([follow("f1", "c1", T0_MS + 100)]) == ["f1"]
    assert store.following("u1") == ["c1"]
    assert store.append_events([follow("f2", "c1", T0_MS + 200, on=False)]) == ["f2"]
    assert store.following("u1") == []

    # A retry of the old follow is a duplicate: it must not follow again.
    assert store.append_events([follow("f1", "c1", T0_MS + 100)]) == []
    assert store.following("u1") == []
    # Nor inside a batch with a fresh event.
    stored = store.append_events([follow("f1", "c1", T0_MS + 100), event("x1")])
    assert stored == ["x1"]
    assert store.following("u1") == []

    # Likewise a replayed unfollow does not undo a later direct follow.
    store.set_follow("u1", "c1", True, T0_MS + 300)
    assert store.append_events([follow("f2", "c1", T0_MS + 200, on=False)]) == []
    assert store.following("u1") == ["c1"]


def test_graph_follows_the_stored_copy_of_a_repeated_id(store: DataStore) -> None:
    """Only the copy that is stored may touch the graph, even within one call.

    The batch repeats f1 with a later ts. One copy of f1 is stored; the graph must equal a replay
    of the events actually in the log, in ts order.
    """
    users(store, "u1", "c1")
    stored = store.append_events(
        [
            follow("f1", "c1", T0_MS + 100),
            follow("u", "c1", T0_MS + 200, on=False),
            follow("f1", "c1", T0_MS + 300),  # same id: a duplicate, not a second follow
        ]
    )
    assert sorted(stored) == ["f1", "u"]
    assert store.count_events() == 2

    replay: set[str] = set()
    for _, e in sorted(store.read_events(), key=lambda se: se[1].ts):
        assert e.creator_id is not None
        if e.type == "follow":
            replay.add(e.creator_id)
        else:
            replay.discard(e.creator_id)
    assert sorted(store.following("u1")) == sorted(replay)


_example = itertools.count()

# Each id in a small pool has a fixed content (type, creator, a distinct ts), so repeated copies
# are true retries; batches draw ids from the pool with repeats.
_ids_pool = [f"e{i}" for i in range(8)]
_content = st.tuples(
    st.sampled_from(["follow", "unfollow", "like"]),
    st.sampled_from(["c0", "c1"]),
)


@settings(
    max_examples=25,
    deadline=None,  # PostgreSQL round trips vary; the example count keeps the run short
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    contents=st.lists(_content, min_size=len(_ids_pool), max_size=len(_ids_pool)),
    ts_order=st.permutations(range(len(_ids_pool))),
    batches=st.lists(
        st.lists(st.sampled_from(range(len(_ids_pool))), max_size=10), min_size=1, max_size=4
    ),
)
def test_append_events_stores_each_id_once(
    store: DataStore,
    contents: list[tuple[str, str]],
    ts_order: list[int],
    batches: list[list[int]],
) -> None:
    """Random batches with repeated ids: each id is stored once, count_events grows by the number
    of distinct ids, the log keeps first-append order, and the graph is a ts-ordered fold of the
    newly stored follow/unfollow events of each call."""
    # The store outlives examples: give each example its own ids and users.
    p = f"x{next(_example)}-"
    user, creators = p + "u", [p + "c0", p + "c1"]
    store.create_missing_users([user, *creators])
    count_before = store.count_events()

    def row(i: int) -> EventRow:
        kind, creator = contents[i]
        return event(
            p + _ids_pool[i],
            user_id=user,
            type=kind,
            video_id=None,
            creator_id=p + creator,
            ts_ms=T0_MS + 10 * ts_order[i],
        )

    seen: list[str] = []
    model: set[str] = set()
    for batch in batches:
        rows = [row(i) for i in batch]
        fresh = list(dict.fromkeys(r["event_id"] for r in rows if r["event_id"] not in seen))

        stored = store.append_events(rows)

        assert sorted(stored) == sorted(fresh)
        seen.extend(fresh)
        new_rows = sorted((r for r in rows if r["event_id"] in fresh), key=lambda r: r["ts_ms"])
        for r in new_rows:
            assert r["creator_id"] is not None
            if r["type"] == "follow":
                model.add(r["creator_id"])
            elif r["type"] == "unfollow":
                model.discard(r["creator_id"])

    assert store.count_events() - count_before == len(seen)
    mine = [e.event_id for _, e in store.read_events() if e.event_id.startswith(p)]
    assert mine == seen  # each id once, in the order it was first appended
    assert sorted(store.following(user)) == sorted(model)


# -- API keys ------------------------------------------------------------------------------------


def test_api_keys_add_find_list_revoke(store: DataStore) -> None:
    assert store.list_api_keys() == []
    admin = ApiKey(id="k1", scope="admin", name="ops", created_at=T0)
    app = ApiKey(id="k2", scope="app", name="", created_at=at(1))
    store.add_api_key(app, "h" * 64)
    store.add_api_key(admin, "a1" * 32)

    found = store.find_api_key("a1" * 32)
    assert found is not None
    assert found.model_dump() == admin.model_dump()
    assert store.find_api_key("h" * 64) == app
    assert store.find_api_key("nope") is None
    assert [k.model_dump() for k in store.list_api_keys()] == [
        admin.model_dump(),
        app.model_dump(),
    ]

    assert store.revoke_api_key("k1") is True
    assert store.revoke_api_key("k1") is False
    assert store.revoke_api_key("ghost") is False

    revoked = store.find_api_key("a1" * 32)
    assert revoked is not None
    assert revoked.revoked is True
    assert revoked.model_dump(exclude={"revoked"}) == admin.model_dump(exclude={"revoked"})
    other = store.find_api_key("h" * 64)
    assert other is not None and other.revoked is False
    assert {k.id: k.revoked for k in store.list_api_keys()} == {"k1": True, "k2": False}


# -- import progress -----------------------------------------------------------------------------


def test_import_progress(store: DataStore) -> None:
    source = "file:///data/events-2024.jsonl"
    assert store.import_progress(source) == 0
    store.set_import_progress(source, 1_000)
    assert store.import_progress(source) == 1_000
    store.set_import_progress(source, 5_000_000_000)  # beyond 32 bits
    assert store.import_progress(source) == 5_000_000_000
    store.set_import_progress(source, 0)
    assert store.import_progress(source) == 0
    assert store.import_progress("other") == 0
    store.set_import_progress("other", 7)
    assert store.import_progress(source) == 0
    assert store.import_progress("other") == 7
