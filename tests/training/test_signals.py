from __future__ import annotations

import pytest

from fyp.config import Settings, SignalWeights
from fyp.models import Event, VideoBrief
from fyp.storage.data import DataStore
from fyp.training.signals import Interactions, SignalBuilder, read_pages
from tests.training.support import clustered_world, event, load

BRIEFS = {
    "v1": VideoBrief("c1", 10_000),
    "v2": VideoBrief("c1", 20_000),
    "v3": VideoBrief("c2", None),
}


def build(events: list[Event], weights: SignalWeights | None = None) -> Interactions:
    b = SignalBuilder(
        weights or SignalWeights(),
        lambda ids: {i: BRIEFS[i] for i in ids if i in BRIEFS},
        sorted(BRIEFS),
    )
    b.add_page([(n + 1, e) for n, e in enumerate(events)])
    return b.build()


def weight(data: Interactions, user: str, video: str) -> float:
    if user not in data.user_index:
        return 0.0
    return float(data.weights[data.user_index[user], data.video_index[video]])


def negative(data: Interactions, user: str, video: str) -> bool:
    return bool(data.negatives[data.user_index[user], data.video_index[video]])


def test_play_weight_is_completion_plus_a_bonus_for_finishing() -> None:
    w = SignalWeights()
    data = build([event("play", "v1", watch_ms=5_000), event("play", "v2", watch_ms=19_000)])
    assert weight(data, "u1", "v1") == pytest.approx(0.5 * w.play)
    assert weight(data, "u1", "v2") == pytest.approx(0.95 * w.play + w.complete_bonus)


def test_replays_count_past_one_but_are_capped() -> None:
    w = SignalWeights(completion_cap=2.0, max_pair_weight=10)
    data = build([event("play", "v1", watch_ms=15_000)], w)
    assert weight(data, "u1", "v1") == pytest.approx(1.5 * w.play + w.complete_bonus)
    data = build([event("play", "v1", watch_ms=100_000)], w)
    assert weight(data, "u1", "v1") == pytest.approx(2.0 * w.play + w.complete_bonus)


def test_unknown_duration_gets_the_flat_play_weight() -> None:
    data = build([event("play", "v3", watch_ms=5_000)])
    assert weight(data, "u1", "v3") == pytest.approx(SignalWeights().play_unknown_duration)


def test_events_add_up_per_type_and_the_pair_total_is_capped() -> None:
    w = SignalWeights(max_pair_weight=3.0)
    data = build([event("like"), event("share", minute=1)], w)
    assert weight(data, "u1", "v1") == pytest.approx(w.like + w.share)
    data = build([event("like"), event("share", minute=1), event("comment", minute=2)], w)
    assert weight(data, "u1", "v1") == pytest.approx(3.0)


def test_impressions_alone_are_not_positives() -> None:
    data = build([event("impression"), event("impression", minute=1)])
    assert weight(data, "u1", "v1") == 0.0


def test_unlike_cancels_the_like_and_unfollow_the_follow() -> None:
    data = build([event("like"), event("unlike", minute=1)])
    assert weight(data, "u1", "v1") == 0.0
    data = build(
        [
            event("follow", "v1", creator_id="c1"),
            event("like", "v2", minute=1),
            event("unfollow", None, creator_id="c1", minute=2),
        ]
    )
    assert weight(data, "u1", "v1") == 0.0
    assert weight(data, "u1", "v2") == pytest.approx(SignalWeights().like)


def test_skip_is_a_negative_and_never_a_positive() -> None:
    data = build([event("impression"), event("skip", minute=1), event("like", "v2")])
    assert weight(data, "u1", "v1") == 0.0
    assert negative(data, "u1", "v1")
    assert not negative(data, "u1", "v2")


def test_a_skip_lowers_a_positive() -> None:
    w = SignalWeights()
    data = build([event("share"), event("skip", minute=1)])
    assert weight(data, "u1", "v1") == pytest.approx(w.share + w.skip)


@pytest.mark.parametrize("veto", ["not_interested", "report"])
def test_not_interested_and_report_veto_the_pair_whatever_came_before(veto: str) -> None:
    data = build([event("play", watch_ms=10_000), event("like", minute=1), event(veto, minute=2)])
    assert weight(data, "u1", "v1") == 0.0
    assert negative(data, "u1", "v1")
    assert data.sequences[data.user_index["u1"]].size == 0


def test_sequences_follow_time_then_log_order() -> None:
    data = build(
        [
            event("like", "v2", minute=5),
            event("like", "v1", minute=1),
            event("like", "v3", minute=5),
            event("like", "v1", minute=9),  # a repeat keeps the first time
        ]
    )
    order = [data.video_ids[i] for i in data.sequences[data.user_index["u1"]]]
    assert order == ["v1", "v2", "v3"]


def test_events_on_videos_outside_the_catalog_are_ignored() -> None:
    data = build([event("like", "gone"), event("like", "v1")])
    assert "gone" not in data.video_ids
    assert weight(data, "u1", "v1") > 0


def test_data_window_and_counts() -> None:
    data = build([event("like", minute=1), event("impression", minute=3)])
    assert (data.first_seq, data.last_seq) == (1, 2)
    assert data.counts == {"like": 1, "impression": 1}
    assert data.last_ts_ms is not None and data.first_ts_ms is not None
    assert data.last_ts_ms - data.first_ts_ms == 2 * 60_000


def test_read_pages_walks_the_whole_log_on_every_backend(
    store: DataStore, settings: Settings
) -> None:
    world = clustered_world(topics=2, per_topic=8, users=6)
    load(store, settings, world)
    seen = [seq for page in read_pages(store, page_size=7) for seq, _ in page]
    assert len(seen) == store.count_events() == len(world.events)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


def test_a_play_under_min_positive_is_neither_positive_nor_negative() -> None:
    data = build([event("play", "v1", watch_ms=2_000), event("play", "v2", watch_ms=10_000)])
    assert weight(data, "u1", "v1") == 0.0 and not negative(data, "u1", "v1")
    assert weight(data, "u1", "v2") > 0
