"""EventIngestor on the memory store with a fixed clock: every validation rule, one by one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fyp.config import IngestSettings
from fyp.events import EventIngestor
from fyp.models import BatchRefused, EventType, User, VideoIn
from fyp.storage.data.memory import MemoryDataStore
from fyp.types import from_ms

NOW = 1_717_200_000_000  # 2024-06-01T00:00:00Z, a whole second
TS = "2024-05-31T12:00:00Z"


@pytest.fixture
def store() -> MemoryDataStore:
    s = MemoryDataStore()
    s.upsert_users([User(id="u1"), User(id="u2"), User(id="c1"), User(id="c2")])
    s.upsert_videos(
        [
            VideoIn(id="v1", creator_id="c1", duration_ms=10_000),
            VideoIn(id="v2", creator_id="c2"),
            VideoIn(id="vu1", creator_id="u1"),
        ],
        "approved",
    )
    return s


def ingestor(store: MemoryDataStore, **settings: Any) -> EventIngestor:
    return EventIngestor(store, IngestSettings(**settings), clock=lambda: NOW)


def ev(event_id: str = "e1", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": event_id,
        "user_id": "u1",
        "type": "like",
        "video_id": "v1",
        "ts": TS,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def reasons(result: Any) -> dict[int, str]:
    return {r.index: r.reason for r in result.rejected}


# -- the batch as a whole --------------------------------------------------------------------


def test_object_and_bare_list_payloads_are_both_accepted(store: MemoryDataStore) -> None:
    ing = ingestor(store)
    assert ing.ingest({"events": [ev("a")]}).stored == 1
    assert ing.ingest([ev("b")]).stored == 1
    assert store.count_events() == 2


@pytest.mark.parametrize("payload", [None, 3, "events", {"events": "x"}, {"evts": []}, {}])
def test_a_payload_without_an_event_list_is_refused_whole(
    store: MemoryDataStore, payload: Any
) -> None:
    with pytest.raises(BatchRefused) as e:
        ingestor(store).ingest(payload)
    assert (e.value.status, e.value.code) == (422, "invalid_batch")
    assert store.count_events() == 0


def test_max_batch_is_inclusive_and_one_more_is_refused_whole(store: MemoryDataStore) -> None:
    ing = ingestor(store, max_batch=3)
    with pytest.raises(BatchRefused) as e:
        ing.ingest([ev(f"e{i}") for i in range(4)])
    assert (e.value.status, e.value.code) == (413, "batch_too_large")
    assert "at most 3" in str(e.value)
    assert store.count_events() == 0
    assert ing.ingest([ev(f"e{i}") for i in range(3)]).stored == 3


def test_empty_batch_stores_nothing(store: MemoryDataStore) -> None:
    result = ingestor(store).ingest([])
    assert (result.received, result.stored, result.duplicates, result.rejected) == (0, 0, 0, [])


# -- what gets stored ------------------------------------------------------------------------


def test_stored_event_keeps_fields_and_server_receive_time(store: MemoryDataStore) -> None:
    result = ingestor(store).ingest(
        [ev("p1", type="play", watch_ms=2500, request_id="r1", extra={"screen": "fyp"})]
    )
    assert (result.received, result.stored, result.stored_ids) == (1, 1, ["p1"])
    stored = store.get_event("p1")
    assert stored is not None
    assert stored.type == EventType.play
    assert (stored.user_id, stored.video_id, stored.watch_ms) == ("u1", "v1", 2500)
    assert stored.request_id == "r1"
    assert stored.extra == {"screen": "fyp"}
    assert stored.ts == datetime(2024, 5, 31, 12, tzinfo=UTC)
    assert stored.received_at == from_ms(NOW)


@pytest.mark.parametrize(
    "ts", ["2024-05-31T12:00:00Z", "2024-05-31T14:00:00+02:00", 1_717_156_800, 1_717_156_800_000]
)
def test_ts_accepts_iso_and_epoch_seconds_or_milliseconds(
    store: MemoryDataStore, ts: str | int
) -> None:
    assert ingestor(store).ingest([ev("t", ts=ts)]).stored == 1
    stored = store.get_event("t")
    assert stored is not None
    assert stored.ts == datetime(2024, 5, 31, 12, tzinfo=UTC)


def test_duplicates_inside_a_batch_and_across_batches(store: MemoryDataStore) -> None:
    ing = ingestor(store)
    first = ing.ingest([ev("a"), ev("a"), ev("b")])
    assert (first.stored, first.duplicates, first.rejected) == (2, 1, [])
    again = ing.ingest([ev("a"), ev("b"), ev("c")])
    assert (again.stored, again.duplicates, again.stored_ids) == (1, 2, ["c"])
    assert store.count_events() == 3


# -- EventIn._shape, rule by rule ------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (ev(type="like", video_id=None), "a like event needs video_id"),
        (ev(type="impression", video_id=None), "a impression event needs video_id"),
        (ev(type="follow", video_id=None), "a follow event needs video_id or creator_id"),
        (ev(type="unfollow", video_id=None), "a unfollow event needs video_id or creator_id"),
        (
            ev(type="profile_visit", video_id=None),
            "a profile_visit event needs video_id or creator_id",
        ),
        (
            ev(type="not_interested", video_id=None),
            "a not_interested event needs video_id, creator_id, sound_id or hashtag",
        ),
        (ev(type="play"), "a play event needs watch_ms"),
        (ev(sound_id="s1"), "sound_id and hashtag are only for not_interested events"),
        (ev(hashtag="cats"), "sound_id and hashtag are only for not_interested events"),
    ],
)
def test_shape_rules(store: MemoryDataStore, event: dict[str, Any], reason: str) -> None:
    result = ingestor(store).ingest([event])
    assert result.stored == 0
    assert [(r.index, r.id) for r in result.rejected] == [(0, "e1")]
    assert reason in result.rejected[0].reason
    assert store.count_events() == 0


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (ev(type="play", watch_ms=-1), "watch_ms"),
        (ev(type="play", watch_ms=24 * 3600 * 1000 + 1), "watch_ms"),
        (ev(type="play", watch_ms="long"), "watch_ms"),
        (ev(type="wave"), "type"),
        (ev(ts="yesterday"), "ts"),
        (ev(user_id="has space"), "user_id"),
        (ev(video_id="v" * 129), "video_id"),
        (ev(colour="red"), "colour"),
        (ev(extra={f"k{i}": i for i in range(33)}), "extra"),
        (ev(type="not_interested", video_id=None, hashtag="two words"), "hashtag"),
        ({"user_id": "u1", "type": "like", "video_id": "v1", "ts": TS}, "event_id"),
    ],
)
def test_field_rules_name_the_field(
    store: MemoryDataStore, event: dict[str, Any], field: str
) -> None:
    result = ingestor(store).ingest([event])
    assert result.stored == 0
    assert len(result.rejected) == 1
    assert result.rejected[0].reason.startswith(f"{field}: ")
    assert store.count_events() == 0


def test_non_object_items_are_rejected_without_an_id(store: MemoryDataStore) -> None:
    result = ingestor(store).ingest(["e1", 7, None, {"event_id": 5}])
    assert [(r.index, r.id) for r in result.rejected] == [
        (0, None),
        (1, None),
        (2, None),
        (3, None),
    ]
    assert store.count_events() == 0


@pytest.mark.parametrize(
    "event",
    [
        ev(type="follow", video_id=None, creator_id="c1"),
        ev(type="profile_visit", video_id=None, creator_id="c1"),
        ev(type="play", watch_ms=0),
        ev(type="play", watch_ms=24 * 3600 * 1000),
        ev(type="not_interested", video_id=None, sound_id="s9"),
        ev(type="not_interested", video_id=None, creator_id="c2"),
        ev(type="not_interested", video_id=None, hashtag="cats"),
        ev(type="not_interested"),
        ev(extra={f"k{i}": i for i in range(32)}),
    ],
)
def test_valid_shapes_are_stored(store: MemoryDataStore, event: dict[str, Any]) -> None:
    result = ingestor(store).ingest([event])
    assert result.rejected == []
    assert result.stored == 1


def test_not_interested_hashtag_is_normalised(store: MemoryDataStore) -> None:
    event = ev(type="not_interested", video_id=None, hashtag="  #Cute_Cats ")
    assert ingestor(store).ingest([event]).stored == 1
    stored = store.get_event("e1")
    assert stored is not None
    assert stored.hashtag == "cute_cats"


# -- ingest's own rules ----------------------------------------------------------------------


def test_future_skew_bound_is_inclusive(store: MemoryDataStore) -> None:
    ing = ingestor(store, max_future_skew_s=60)
    result = ing.ingest([ev("edge", ts=NOW + 60_000), ev("late", ts=NOW + 61_000)])
    assert result.stored_ids == ["edge"]
    assert reasons(result) == {1: "ts is further in the future than the server allows"}
    assert [r.id for r in result.rejected] == ["late"]


def test_default_skew_allows_a_day(store: MemoryDataStore) -> None:
    ing = ingestor(store)
    day = 86_400_000
    result = ing.ingest([ev("ok", ts=NOW + day - 1000), ev("no", ts=NOW + day + 1000)])
    assert result.stored_ids == ["ok"]
    assert list(reasons(result)) == [1]


def test_extra_over_4_kib_is_rejected(store: MemoryDataStore) -> None:
    result = ingestor(store).ingest(
        [ev("small", extra={"note": "x" * 3000}), ev("big", extra={"note": "x" * 5000})]
    )
    assert result.stored_ids == ["small"]
    assert reasons(result) == {1: "extra: larger than 4096 bytes as JSON"}


def test_extra_size_is_measured_in_bytes_not_characters(store: MemoryDataStore) -> None:
    # 1,500 euro signs are 1,500 characters but 4,500 bytes of UTF-8 (and of stored JSON).
    result = ingestor(store).ingest([ev("euro", extra={"note": "€" * 1500})])
    assert reasons(result) == {0: "extra: larger than 4096 bytes as JSON"}
    assert store.count_events() == 0


def test_unknown_user_video_and_creator_are_reported_not_created(
    store: MemoryDataStore,
) -> None:
    result = ingestor(store).ingest(
        [
            ev("a", user_id="ghost"),
            ev("b", video_id="nope"),
            ev("c", type="follow", video_id=None, creator_id="nobody"),
            ev("d"),
        ]
    )
    assert result.stored_ids == ["d"]
    assert reasons(result) == {
        0: "unknown user 'ghost'",
        1: "unknown video 'nope'",
        2: "unknown creator 'nobody'",
    }
    assert store.existing_user_ids({"ghost", "nobody"}) == set()
    assert store.get_video("nope") is None


def test_auto_create_users_creates_only_the_acting_user(store: MemoryDataStore) -> None:
    ing = ingestor(store, auto_create_users=True)
    result = ing.ingest([ev("a", user_id="newbie")])
    assert result.stored_ids == ["a"]
    assert store.get_user("newbie") is not None
    # Creators are not made up: a follow of an unknown creator is still reported.
    result = ing.ingest([ev("b", user_id="newbie", type="follow", video_id=None, creator_id="x")])
    assert reasons(result) == {0: "unknown creator 'x'"}
    assert store.get_user("x") is None


def test_auto_create_does_not_create_users_for_rejected_events(store: MemoryDataStore) -> None:
    result = ingestor(store, auto_create_users=True).ingest(
        [ev("a", user_id="ghost", video_id="nope")]
    )
    assert reasons(result) == {0: "unknown video 'nope'"}
    assert store.count_events() == 0
    assert store.get_user("ghost") is None


def test_follow_with_only_a_video_fills_the_creator_and_follows(store: MemoryDataStore) -> None:
    result = ingestor(store).ingest([ev("f", type="follow")])
    assert result.stored_ids == ["f"]
    stored = store.get_event("f")
    assert stored is not None
    assert stored.creator_id == "c1"
    assert store.following("u1") == ["c1"]


def test_follow_then_unfollow_apply_in_ts_order(store: MemoryDataStore) -> None:
    ing = ingestor(store)
    follow = ev("f", type="follow", video_id=None, creator_id="c2", ts="2024-05-31T10:00:00Z")
    unfollow = ev("u", type="unfollow", video_id=None, creator_id="c2", ts="2024-05-31T11:00:00Z")
    assert ing.ingest([unfollow, follow]).stored == 2
    assert store.following("u1") == []


def test_a_like_names_no_creator_and_changes_no_graph(store: MemoryDataStore) -> None:
    assert ingestor(store).ingest([ev("l")]).stored == 1
    stored = store.get_event("l")
    assert stored is not None
    assert stored.creator_id is None
    assert store.following("u1") == []


def test_self_follow_is_rejected_whether_named_or_via_own_video(store: MemoryDataStore) -> None:
    result = ingestor(store).ingest(
        [
            ev("a", type="follow", video_id=None, creator_id="u1"),
            ev("b", type="follow", video_id="vu1"),
        ]
    )
    assert reasons(result) == {
        0: "a user cannot follow themselves",
        1: "a user cannot follow themselves",
    }
    assert store.following("u1") == []


def test_rejections_come_back_in_index_order(store: MemoryDataStore) -> None:
    # Validation rejects (1, 3) are found before lookup rejects (0, 2): the answer is sorted.
    result = ingestor(store, max_future_skew_s=0).ingest(
        [
            ev("r0", user_id="ghost"),
            ev("r1", type="play", watch_ms=-5),
            ev("r2", video_id="nope"),
            ev("r3", ts=NOW + 5000),
            ev("ok"),
        ]
    )
    assert [r.index for r in result.rejected] == [0, 1, 2, 3]
    assert [r.id for r in result.rejected] == ["r0", "r1", "r2", "r3"]
    assert result.stored_ids == ["ok"]
