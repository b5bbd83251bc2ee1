from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fyp.config import Settings
from fyp.pipeline.catalog_index import VideoMeta
from fyp.storage.cache import GLOBAL, Count, Heat
from fyp.storage.cache.memory import MemoryOnlineState
from fyp.storage.data import CatalogRow
from fyp.training import ModelRegistry, Models
from fyp.training.artefacts import ACTIVE, build_index, localize, prefetch
from fyp.training.embeddings import EmbeddingModel


def make_models(version: str, n: int = 30, f: int = 8, seed: int = 0) -> Models:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, f)).astype(np.float32)
    idx = np.tile(np.arange(1, 4, dtype=np.int32), (n, 1)) % n
    val = np.ones((n, 3), np.float32)
    return Models(
        version,
        [f"v{i}" for i in range(n)],
        EmbeddingModel(vectors, 1.0, 10.0),
        build_index(vectors),
        {t: (idx, val) for t in ("item", "content", "next")},
        None,
        {"counts": {"videos": n}},
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_publish_activate_and_roll_back(settings: Settings) -> None:
    reg = ModelRegistry(settings)
    assert reg.current() is None and reg.list() == []
    reg.publish(make_models("v001"))
    reg.publish(make_models("v002", seed=1))
    assert reg.versions() == ["v001", "v002"]
    assert reg.active_version() is None  # publishing alone activates nothing
    reg.activate("v002")
    assert (reg.root / ACTIVE).read_text().strip() == "v002"
    m = reg.current()
    assert m is not None and m.version == "v002"
    reg.activate("v001")  # rollback
    m = reg.current()
    assert m is not None and m.version == "v001"
    assert [(v.version, v.active) for v in reg.list()] == [("v001", True), ("v002", False)]
    with pytest.raises(KeyError):
        reg.activate("nope")
    with pytest.raises(FileExistsError):
        reg.publish(make_models("v001"))


def test_a_loaded_version_round_trips(settings: Settings) -> None:
    reg = ModelRegistry(settings)
    original = make_models("v1")
    reg.publish(original)
    loaded = reg.load("v1")
    np.testing.assert_array_equal(loaded.vectors, original.vectors)
    q = original.vectors[3]
    assert loaded.search(q, 4) == original.search(q, 4)
    rows, scores = loaded.search_rows(q, 4)
    assert [(loaded.video_ids[i], s) for i, s in zip(rows, scores, strict=True)] == loaded.search(
        q, 4
    )
    assert len(rows) == 4 and scores == sorted(scores, reverse=True)  # best first
    assert loaded.neighbours("v0", 2) == [("v1", 1.0), ("v2", 1.0)]
    assert loaded.manifest["embedding"]["alpha"] == 10.0
    assert loaded.ranker is None
    aff = loaded.affinity(q, ["v3", "missing", "v0"])
    assert aff[0] == pytest.approx(float(q @ q), rel=1e-5) and np.isnan(aff[1])
    assert aff[2] == pytest.approx(float(original.vectors[0] @ q), rel=1e-5)


def test_a_loaded_versions_ids_are_the_catalogs_and_the_online_states_objects(
    settings: Settings,
) -> None:
    """Every map a candidate's id is looked up in (the catalog index, the model, the in-process
    counters and trending) holds the same interned string object, so a look-up on a cold
    million-entry map never has to read a second copy of the key."""
    reg = ModelRegistry(settings)
    reg.publish(make_models("v1"))
    loaded = reg.load("v1")

    def fresh() -> str:  # "v7" built at run time: an equal string, not the same object
        return "".join(["v", "7"])

    assert fresh() is not fresh()
    row = CatalogRow(
        id=fresh(),
        creator_id="c1",
        hashtags=[],
        sound_id=None,
        duration_ms=None,
        language=None,
        region=None,
        created_ms=0,
        updated_ms=0,
        moderation="approved",
        allowed_regions=None,
    )
    meta = VideoMeta.of_row(row)
    online = MemoryOnlineState(settings.online)
    online.apply([Heat(fresh(), None, 1.0, 0), Count(fresh(), "plays")])
    [(trending, _)] = online.trending(GLOBAL, 1, 0)
    [counted] = online._videos.row
    assert loaded.video_ids[7] is meta.id is trending is counted
    assert next(k for k in loaded.index_of if k == "v7") is meta.id


def test_loaded_arrays_are_shared_read_only_maps(settings: Settings) -> None:
    """Every worker maps a version's arrays from the page cache instead of holding a copy, and
    the fold-in gives the same vector as from the in-memory model."""
    reg = ModelRegistry(settings)
    original = make_models("v1")
    reg.publish(original)
    loaded = reg.load("v1")

    def mapped(a: np.ndarray) -> bool:
        # a plain ndarray over the read-only mapping: indexing an np.memmap itself runs Python
        return type(a) is np.ndarray and isinstance(a.base, np.memmap) and not a.flags.writeable

    assert mapped(loaded.vectors)
    assert all(mapped(a) for pair in loaded.tables.values() for a in pair)
    recent = [("v1", 1.0), ("v5", 2.0), ("v1", 0.5)]
    got, want = loaded.user_vector(recent), original.user_vector(recent)
    assert got is not None and want is not None
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_prefetch_reads_every_file_of_a_version_and_survives_its_removal(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading a version starts a background read of its files (so the kernel caches them
    before requests fault their pages in); a version deleted meanwhile ends it quietly."""
    reg = ModelRegistry(settings)
    reg.publish(make_models("v1"))
    folder = reg.root / "v1"
    files = {p for p in folder.rglob("*") if p.is_file()}
    read: dict[Path, int] = {}
    real_open = Path.open

    def counting_open(self: Path, *args: object, **kw: object) -> object:
        f = real_open(self, *args, **kw)  # type: ignore[call-overload]
        if self in files:
            read[self] = self.stat().st_size
        return f

    monkeypatch.setattr(Path, "open", counting_open)
    prefetch(folder).join(timeout=10)
    assert set(read) == files and sum(read.values()) > 0
    errors: list[object] = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    gone = settings.var_dir / "gone"
    gone.mkdir()
    (gone / "a.npy").write_bytes(b"x" * 10)
    t = prefetch(gone)
    (gone / "a.npy").unlink()
    t.join(timeout=10)
    assert not t.is_alive() and errors == []


def test_a_version_is_warmed_up_before_it_serves(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry swaps a version in only after its files are read and its index searched,
    so no request meets a cold index (at start-up or on a hot swap)."""
    reg = ModelRegistry(settings)
    reg.publish(make_models("v1"))
    reg.activate("v1")
    warmed: list[tuple[str, bool]] = []
    real = Models.warm_up

    def recording(self: Models, searches: int = 32, wait_s: float = 120.0) -> None:
        real(self, searches, wait_s)
        assert self.prefetching is not None
        warmed.append((self.version, self.prefetching.is_alive()))
        serving = reg.current()
        assert serving is None or serving.version != self.version

    monkeypatch.setattr(Models, "warm_up", recording)
    m = reg.refresh()
    assert m is not None and m.version == "v1"
    assert warmed == [("v1", False)]  # the files were all read before the searches ran


def test_a_version_written_with_one_tables_file_still_loads(settings: Settings) -> None:
    reg = ModelRegistry(settings)
    reg.publish(make_models("v1"))
    folder = reg.root / "v1"
    arrays = {}
    for t in ("item", "content", "next"):
        for part in ("idx", "val"):
            path = folder / "tables" / f"{t}_{part}.npy"
            arrays[f"{t}_{part}"] = np.load(path)
            path.unlink()
    (folder / "tables").rmdir()
    np.savez(folder / "tables.npz", **arrays)
    assert reg.load("v1").neighbours("v0", 2) == [("v1", 1.0), ("v2", 1.0)]


def test_a_server_hot_swaps_after_reload_seconds(settings: Settings) -> None:
    settings.training.reload_seconds = 10
    clock = Clock()
    admin = ModelRegistry(settings)
    server = ModelRegistry(settings, clock=clock)
    admin.publish(make_models("v1"))
    admin.activate("v1")
    first = server.current()
    assert first is not None and first.version == "v1"
    admin.publish(make_models("v2", seed=2))
    admin.activate("v2")
    clock.now = 5
    assert server.current() is first  # not re-checked yet: cheap per-request path
    clock.now = 11
    swapped = server.current()
    assert swapped is not None and swapped.version == "v2"
    assert admin.load("v1").version == "v1"  # the previous version stays loadable


def test_a_version_that_fails_to_load_never_replaces_the_serving_one(settings: Settings) -> None:
    settings.training.reload_seconds = 0
    reg = ModelRegistry(settings)
    reg.publish(make_models("v1"))
    reg.activate("v1")
    assert reg.current() is not None
    reg.publish(make_models("v2"))
    (reg.root / "v2" / "vectors.npy").write_bytes(b"corrupt")
    # activate() refuses what does not load ...
    with pytest.raises(ValueError):
        reg.activate("v2")
    # ... and a pointer moved by hand is survived: the old models keep serving.
    (reg.root / ACTIVE).write_text("v2\n")
    m = reg.current()
    assert m is not None and m.version == "v1"


def test_unfinished_versions_are_invisible(settings: Settings) -> None:
    reg = ModelRegistry(settings)
    reg.publish(make_models("v1"))
    (reg.root / ".tmp-v2").mkdir()
    (reg.root / "v3").mkdir()  # no manifest: a copy still in progress
    assert reg.versions() == ["v1"]
    with pytest.raises(KeyError):
        reg.activate("v3")


def test_readers_never_see_a_half_written_version(settings: Settings) -> None:
    settings.training.reload_seconds = 0
    reg = ModelRegistry(settings)
    reg.publish(make_models("v00"))
    reg.activate("v00")
    seen: set[str] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def serve() -> None:
        reader = ModelRegistry(settings)
        while not stop.is_set():
            try:
                m = reader.current()
                assert m is not None
                assert m.manifest["version"] == m.version
                assert m.vectors.shape[0] == len(m.video_ids) == m.index.ntotal
                seen.add(m.version)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)
                return

    threads = [threading.Thread(target=serve) for _ in range(2)]
    for t in threads:
        t.start()
    for n in range(1, 12):
        # catalogs of different sizes, so a mix of two versions could not pass the checks
        reg.publish(make_models(f"v{n:02d}", n=30 + n, seed=n))
        reg.activate(f"v{n:02d}")
    deadline = time.monotonic() + 10
    while "v11" not in seen and not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert "v11" in seen  # the readers followed the pointer to the end


def test_prune_keeps_the_newest_and_the_active(settings: Settings, tmp_path: Path) -> None:
    reg = ModelRegistry(settings)
    for n in range(5):
        reg.publish(make_models(f"v{n}"))
    reg.activate("v0")
    deleted = reg.prune(keep=3)
    assert deleted == ["v1", "v2"]
    assert reg.versions() == ["v0", "v3", "v4"]


@pytest.mark.parametrize("kind", ["hnsw", "hnsw_sq8", "ivf"])
def test_approximate_indexes_find_what_the_exact_one_finds(kind: str, settings: Settings) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    exact = build_index(vectors, "flat")
    approx = build_index(vectors, kind, nprobe=54)
    q = vectors[:20] + 0.1
    _, a = approx.search(q, 10)
    _, b = exact.search(q, 10)
    overlap = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b, strict=True)])
    assert overlap > 0.95
    # and the settings survive a save and load
    reg = ModelRegistry(settings)
    models = make_models("v1", n=3000, f=16, seed=5)
    models.index = approx
    models.manifest["index"] = {"kind": kind, "ef_search": 64, "nprobe": 7}
    reg.publish(models)
    loaded = reg.load("v1").index
    assert type(loaded) is type(approx)
    if kind.startswith("hnsw"):
        assert loaded.hnsw.efSearch == 64
    else:
        assert loaded.nprobe == 7


@pytest.mark.parametrize("kind", ["hnsw", "hnsw_sq8"])
def test_a_localized_index_finds_the_same_videos_by_their_rows(
    kind: str, settings: Settings
) -> None:
    # Two clusters far apart, so the bottom layer's breadth-first order from the entry point
    # cannot be the order of the rows (which interleave the clusters).
    rng = np.random.default_rng(9)
    n, f = 3000, 16
    centres = np.zeros((2, f), np.float32)
    centres[0, 0], centres[1, 1] = 6.0, 6.0
    vectors = (centres[np.arange(n) % 2] + rng.standard_normal((n, f))).astype(np.float32)
    models = make_models("v1", n=n, f=f, seed=9)
    models.embedding = EmbeddingModel(vectors, 1.0, 10.0)
    plain = build_index(vectors, kind)
    models.index = plain
    queries = vectors[:25] * 1.5 + 0.05
    before = [models.search_rows(q, 50) for q in queries]

    moved = build_index(vectors, kind)
    rows = localize(moved)
    assert rows is not None
    assert sorted(rows.tolist()) == list(range(n))  # every row once
    assert rows.tolist() != list(range(n))  # the storage order did change
    # the index's labels are now positions in that order, which the models map back
    _, raw = moved.search(queries[:1], 50)
    assert set(rows[raw[0]].tolist()) == set(before[0][0])
    models.index, models.index_rows = moved, rows
    after = [models.search_rows(q, 50) for q in queries]
    for (b_rows, b_scores), (a_rows, a_scores) in zip(before, after, strict=True):
        assert len(set(a_rows) & set(b_rows)) >= 48
        np.testing.assert_allclose(sorted(a_scores), sorted(b_scores), rtol=1e-3, atol=1e-3)
    # each row's score is that row's vector's product with the query
    q = queries[0]
    a_rows, a_scores = after[0]
    exact = vectors[a_rows] @ q
    tol = 0.05 * float(np.abs(exact).max())  # 8-bit codes are approximate
    np.testing.assert_allclose(a_scores, exact, atol=tol)

    # a published version keeps the map; one without it (older) reads its labels as rows
    reg = ModelRegistry(settings)
    reg.publish(models)
    loaded = reg.load("v1")
    assert loaded.index_rows is not None
    assert loaded.index_rows.tolist() == rows.tolist()
    assert loaded.search_rows(q, 50)[0] == a_rows
    (reg.root / "v1" / "index_rows.npy").unlink()
    assert reg.load("v1").index_rows is None


def test_only_graph_indexes_are_localized() -> None:
    vectors = np.random.default_rng(1).standard_normal((2000, 8)).astype(np.float32)
    assert localize(build_index(vectors, "flat")) is None
    assert localize(build_index(vectors, "ivf")) is None


def test_a_background_registry_keeps_serving_while_it_loads(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.training.reload_seconds = 0
    admin = ModelRegistry(settings)
    admin.publish(make_models("v1"))
    admin.activate("v1")
    server = ModelRegistry(settings, background=True)
    assert server.refresh() is not None  # start-up: load before serving
    admin.publish(make_models("v2", seed=3))
    admin.activate("v2")
    release = threading.Event()
    real_load = Models.load.__func__  # type: ignore[attr-defined]

    def slow_load(cls: type[Models], folder: Path) -> Models:
        assert release.wait(10)
        loaded: Models = real_load(cls, folder)
        return loaded

    monkeypatch.setattr(Models, "load", classmethod(slow_load))
    # The change is noticed and loading starts, but requests are answered at once meanwhile.
    for _ in range(3):
        m = server.current()
        assert m is not None and m.version == "v1"
    release.set()
    server.wait(10)
    swapped = server.current()
    assert swapped is not None and swapped.version == "v2"
    # a fresh background registry answers None until its first load is done, never blocks
    release.clear()
    cold = ModelRegistry(settings, background=True)
    assert cold.current() is None
    release.set()
    cold.wait(10)
    m = cold.current()
    assert m is not None and m.version == "v2"
