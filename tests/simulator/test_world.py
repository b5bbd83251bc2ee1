from __future__ import annotations

import numpy as np
import pytest

from fyp.models import User, VideoIn
from fyp.simulator.world import (
    EVENT_TYPES,
    FOLLOW,
    IMPRESSION,
    LIKE,
    PLAY,
    EventChunk,
    World,
    WorldSpec,
)

NOW = 1_800_000_000_000
SPEC = WorldSpec(videos=5_000, users=800, events=60_000, days=3, seed=4)


@pytest.fixture(scope="module")
def world() -> World:
    return World(SPEC, NOW)


@pytest.fixture(scope="module")
def log(world: World) -> EventChunk:
    chunks = list(world.events())
    assert [c.first for c in chunks] == list(np.cumsum([0] + [len(c) for c in chunks[:-1]]))
    return EventChunk(
        first=0,
        user=np.concatenate([c.user for c in chunks]),
        video=np.concatenate([c.video for c in chunks]),
        kind=np.concatenate([c.kind for c in chunks]),
        ts_ms=np.concatenate([c.ts_ms for c in chunks]),
        watch_ms=np.concatenate([c.watch_ms for c in chunks]),
        creator=np.concatenate([c.creator for c in chunks]),
    )


def test_sizes_and_shapes(world: World, log: EventChunk) -> None:
    assert len(world.video_ids) == 5_000 and len(set(world.video_ids)) == 5_000
    assert len(world.user_ids) == 800 and len(world.creator_ids) == SPEC.n_creators
    assert world.video_tags.shape == (5_000, 4) and (world.video_tags[:, 0] >= 0).all()
    assert world.user_topics.shape == (800, 3) and world.user_tags.shape == (800, 4)
    # a user's favourite topics are distinct
    assert all(len(set(row)) == 3 for row in world.user_topics.tolist())
    assert len(log) == SPEC.events  # exactly as many as asked
    assert log.user.max() < 800 and log.video.max() < 5_000
    assert set(np.unique(log.kind).tolist()) <= set(range(len(EVENT_TYPES)))


def test_every_creator_has_a_video_and_the_top_1_percent_hold_a_large_share() -> None:
    w = World(WorldSpec(videos=50_000, users=10, events=10, seed=2), NOW)
    per_creator = np.bincount(w.video_creator, minlength=len(w.creator_ids))
    assert per_creator.min() >= 1
    top = np.sort(per_creator)[::-1][: len(per_creator) // 100]
    assert top.sum() / per_creator.sum() > 0.15  # 1% of creators, over 15x their fair share
    # hashtags and sounds are shared, popular ones by many videos
    tag_use = np.bincount(w.video_tags[w.video_tags >= 0])
    assert tag_use.max() > 50 * np.median(tag_use[tag_use > 0])
    sound_use = np.bincount(w.video_sound[w.video_sound >= 0])
    assert sound_use.max() > 100 and (sound_use > 1).sum() > 100


def test_events_are_time_ordered_inside_the_window_and_after_each_upload(
    world: World, log: EventChunk
) -> None:
    assert (np.diff(log.ts_ms) >= 0).all()
    assert log.ts_ms.min() >= NOW - 3 * 86_400_000 and log.ts_ms.max() <= NOW
    assert (world.video_created[log.video] < log.ts_ms).all()
    plays = log.kind == PLAY
    assert (log.watch_ms[plays] > 0).all() and (log.watch_ms[~plays] == -1).all()
    follows = log.kind == FOLLOW
    assert (log.creator[follows] == world.video_creator[log.video[follows]]).all()
    assert (log.creator[~follows] == -1).all()
    # a view starts with its impression: there are about twice as many events as impressions
    assert 1.8 < len(log) / (log.kind == IMPRESSION).sum() < 2.5


def test_what_users_engage_with_follows_their_latent_interests(
    world: World, log: EventChunk
) -> None:
    liked = log.kind == LIKE
    users, videos = log.user[liked], log.video[liked]
    assert users.size > 1000
    tags = world.video_tags[videos]

    def hit_rate(fav: np.ndarray) -> float:
        return float(
            ((tags[:, :, None] == fav[:, None, :]) & (tags[:, :, None] >= 0)).any((1, 2)).mean()
        )

    own = hit_rate(world.user_tags[users])
    # the same likes against someone else's favourite hashtags: what chance gives
    other = hit_rate(world.user_tags[np.random.default_rng(0).permutation(users)])
    assert own > 0.3 and own > 3 * other
    topic_own = (world.user_topics[users] == world.video_topic[videos][:, None]).any(1).mean()
    assert topic_own > 0.7
    # and users like what matches them more often than what they are merely shown
    shown = log.kind == IMPRESSION
    shown_match = (
        (world.user_topics[log.user[shown]] == world.video_topic[log.video[shown]][:, None])
        .any(1)
        .mean()
    )
    assert topic_own > shown_match + 0.05


def test_the_same_seed_gives_the_same_world_and_another_seed_another() -> None:
    small = WorldSpec(videos=2_000, users=200, events=5_000, days=1, seed=9)
    a, b = World(small, NOW), World(small, NOW)
    ea, eb = list(a.events()), list(b.events())
    assert np.array_equal(a.video_tags, b.video_tags)
    assert np.array_equal(a.user_creators, b.user_creators)
    for x, y in zip(ea, eb, strict=True):
        for col in ("user", "video", "kind", "ts_ms", "watch_ms", "creator"):
            assert np.array_equal(getattr(x, col), getattr(y, col))
    c = World(WorldSpec(videos=2_000, users=200, events=5_000, days=1, seed=10), NOW)
    assert not np.array_equal(a.video_creator, c.video_creator)


def test_records_are_what_the_store_accepts(world: World, log: EventChunk) -> None:
    users = [u for batch in world.users(batch=300) for u in batch]
    assert len(users) == len(world.creator_ids) + len(world.user_ids)
    assert all(isinstance(u, User) for u in users)
    viewer = next(u for u in users if u.id == world.user_ids[0])
    assert viewer.interests == [world.topics[t] for t in world.user_topics[0].tolist()]
    videos = next(world.videos(batch=50))
    assert len(videos) == 50 and all(isinstance(v, VideoIn) for v in videos)
    v0 = videos[0]
    assert v0.creator_id == world.creator_ids[world.video_creator[0]]
    assert v0.hashtags == world.video_hashtags(0) and v0.moderation == "approved"
    head = EventChunk(
        first=0,
        user=log.user[:20],
        video=log.video[:20],
        kind=log.kind[:20],
        ts_ms=log.ts_ms[:20],
        watch_ms=log.watch_ms[:20],
        creator=log.creator[:20],
    )
    rows = world.event_rows(head)
    assert [r["event_id"] for r in rows] == [f"e{i:05d}" for i in range(20)]
    assert [r["type"] for r in rows] == [EVENT_TYPES[k] for k in log.kind[:20].tolist()]
    assert all((r["watch_ms"] is not None) == (r["type"] == "play") for r in rows)


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ValueError):
        WorldSpec(videos=0)
    with pytest.raises(ValueError):
        WorldSpec(videos=10, creators=20)
