from __future__ import annotations

import numpy as np

from fyp.config import Settings, SignalWeights
from fyp.storage.data import DataStore
from fyp.training.columns import LogPage, read_catalog, read_log
from fyp.training.signals import SignalBuilder, catalog, read_pages
from tests.training.support import clustered_world, load


def test_read_log_gives_every_event_s_columns_on_every_backend(
    store: DataStore, settings: Settings
) -> None:
    world = clustered_world(topics=2, per_topic=8, users=6)
    load(store, settings, world)
    pages = list(read_log(store, page_size=7))
    assert all(len(p) == 7 for p in pages[:-1]) and 0 < len(pages[-1]) <= 7
    records = [LogPage.from_events(p) for p in read_pages(store, page_size=1000)]
    assert len(records) == 1
    want = records[0]
    for name in LogPage.__slots__:
        got = [x for p in pages for x in getattr(p, name)]
        assert got == list(getattr(want, name)), name
    assert len(want) == len(world.events) and sorted(want.seq) == list(want.seq)


def test_after_seq_resumes_the_log(store: DataStore, settings: Settings) -> None:
    load(store, settings, clustered_world(topics=2, per_topic=8, users=4))
    seqs = [s for p in read_log(store, page_size=5) for s in p.seq]
    later = [s for p in read_log(store, page_size=5, after_seq=seqs[9]) for s in p.seq]
    assert later == seqs[10:]


def test_read_catalog_matches_the_records_on_every_backend(
    store: DataStore, settings: Settings
) -> None:
    world = clustered_world(topics=3, per_topic=8, users=3)
    load(store, settings, world)
    got = read_catalog(store, page_size=4)  # several pages
    want = catalog(store)
    assert [v.id for v in got] == [v.id for v in want] == sorted(v["id"] for v in world.videos)
    for g, w in zip(got, want, strict=True):
        assert (g.creator_id, g.caption, g.hashtags, g.sound_id, g.duration_ms) == (
            w.creator_id,
            w.caption,
            w.hashtags,
            w.sound_id,
            w.duration_ms,
        )


def test_signals_from_columns_equal_signals_from_records(
    store: DataStore, settings: Settings
) -> None:
    load(store, settings, clustered_world())
    ids = [v.id for v in catalog(store)]
    a = SignalBuilder(SignalWeights(), store.video_briefs, ids)
    for page in read_log(store, page_size=50):
        a.add_log(page)
    b = SignalBuilder(SignalWeights(), store.video_briefs, ids)
    for records in read_pages(store, page_size=33):
        b.add_page(records)
    x, y = a.build(), b.build()
    assert x.user_ids == y.user_ids and x.video_ids == y.video_ids
    assert np.array_equal(x.weights.toarray(), y.weights.toarray()) and x.weights.nnz > 0
    assert all(np.array_equal(s, t) for s, t in zip(x.sequences, y.sequences, strict=True))
