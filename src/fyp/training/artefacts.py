"""Versioned model artefacts on disk, and the registry a server reads them through.

Layout under ``settings.training.models_dir`` (default ``var_dir/models``)::

    ACTIVE                 # the active version's name, replaced atomically (os.replace)
    <version>/manifest.json, vectors.npy, video_ids.json, tables.npz, index.faiss, ranker/

A version is written to a temporary folder and renamed into place complete, so a reader never
sees half of one. :meth:`ModelRegistry.current` is cheap enough to call on every request: it
re-reads ``ACTIVE`` at most every ``reload_seconds`` and, when it changed, loads the new version
fully before swapping it in; if the load fails the old version keeps serving.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fyp.config import Settings
from fyp.training.embeddings import EmbeddingModel
from fyp.training.neighbours import blend_rows
from fyp.training.ranker import Ranker

log = logging.getLogger("fyp.training")

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
ACTIVE = "ACTIVE"
MANIFEST = "manifest.json"
TABLES = ("item", "content", "next")


def models_dir(settings: Settings) -> Path:
    return settings.training.models_dir or settings.var_dir / "models"


class Models:
    """One loaded model version: what the feed's sources and scorer use.

    Attributes:
        version: the version's folder name.
        video_ids: index -> video id; ``index_of`` is the reverse.
        manifest: the version's manifest (data window, counts, timings, metrics).
        ranker: per-action models, or None when the served log had too little to learn from.
        index_rows: the row of each of the index's labels when the index stores the vectors in
            an order of its own (``localize``); None when its labels are the rows.
    """

    def __init__(
        self,
        version: str,
        video_ids: list[str],
        embedding: EmbeddingModel,
        index: Any,
        tables: dict[str, tuple[I32, npt.NDArray[np.float32]]],
        ranker: Ranker | None,
        manifest: dict[str, Any],
        index_rows: I64 | None = None,
    ) -> None:
        self.version = version
        self.video_ids = video_ids
        self.index_of = {v: i for i, v in enumerate(video_ids)}
        self.embedding = embedding
        self.index = index
        self.tables = tables
        self.ranker = ranker
        self.manifest = manifest
        self.index_rows = index_rows
        self.prefetching: threading.Thread | None = None  # set by load()

    @property
    def vectors(self) -> F32:
        """(videos x factors) video vectors, row i for ``video_ids[i]``."""
        return self.embedding.item_factors

    def user_vector(self, recent: Sequence[tuple[str, float]]) -> F32 | None:
        """Fold a user in from (video_id, weight) of their positives (unknown videos ignored).

        One small linear solve (well under a millisecond at 128 factors and 50 videos); None
        when no video is known to this version.
        """
        idx: list[int] = []
        w: list[float] = []
        for vid, weight in recent:
            i = self.index_of.get(vid)
            if i is not None and weight > 0:
                idx.append(i)
                w.append(weight)
        if not idx:
            return None
        return self.embedding.user_vector(idx, w)

    def search(self, vector: npt.ArrayLike, k: int) -> list[tuple[str, float]]:
        """The k videos with the largest dot product with ``vector`` (approximate on large
        catalogs), best first, as (video_id, score)."""
        rows, scores = self.search_rows(vector, k)
        ids = self.video_ids
        return [(ids[i], s) for i, s in zip(rows, scores, strict=True)]

    def search_rows(self, vector: npt.ArrayLike, k: int) -> tuple[list[int], list[float]]:
        """``search`` as the videos' rows (indexes into ``video_ids``) and their scores, best
        first: the embedding source turns them into candidates itself, compiled, instead of
        through a list of pairs made here (300 a request)."""
        q = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        k = min(k, len(self.video_ids))
        if k <= 0:
            return [], []
        scores, idx = self.index.search(q, k)
        labels = idx[0]
        if self.index_rows is not None and len(labels):
            labels = np.where(labels < 0, -1, self.index_rows[labels])
        rows: list[int] = labels.tolist()
        found: list[float] = scores[0].tolist()
        if rows and min(rows) < 0:  # faiss pads a short answer with -1 (at its end)
            keep = [j for j, i in enumerate(rows) if i >= 0]
            rows, found = [rows[j] for j in keep], [found[j] for j in keep]
        return rows, found

    def affinity(self, vector: npt.ArrayLike, video_ids: Sequence[str]) -> npt.NDArray[np.float64]:
        """Dot product of ``vector`` with each video's vector (NaN for unknown videos): the
        embedding score of candidates that came from other sources, e.g. as a ranker feature."""
        q = np.asarray(vector, dtype=np.float32)
        # map over dict.get runs in C: 40 against 60 us for a feed's 300 ids (a generator)
        rows = np.array(list(map(self.index_of.get, video_ids, repeat(-1))), np.int64)
        out = np.full(len(video_ids), np.nan)
        known = rows >= 0
        out[known] = self.embedding.item_factors[rows[known]] @ q
        return out

    def _row(self, table: str, video_id: str, k: int) -> list[tuple[str, float]]:
        i = self.index_of.get(video_id)
        if i is None:
            return []
        idx, val = self.tables[table]
        out = []
        for j, v in zip(idx[i, :k].tolist(), val[i, :k].tolist(), strict=True):
            if j < 0:
                break
            out.append((self.video_ids[j], float(v)))
        return out

    def neighbours(self, video_id: str, k: int) -> list[tuple[str, float]]:
        """Videos most co-engaged with ``video_id`` (shrunk cosine of their user sets)."""
        return self._row("item", video_id, k)

    def similar_content(self, video_id: str, k: int) -> list[tuple[str, float]]:
        """Videos nearest to ``video_id`` by content vector (cosine); works without history."""
        return self._row("content", video_id, k)

    def next_items(self, recent_video_ids: Sequence[str], k: int) -> list[tuple[str, float]]:
        """Videos users engage with right after these, chronological order (newest LAST).

        Each recent video's next-item row is weighted half as much as the one after it, and the
        recent videos themselves are left out.
        """
        known = [self.index_of[v] for v in recent_video_ids[-10:] if v in self.index_of]
        if not known:
            return []
        idx, val = self.tables["next"]
        scores = blend_rows(idx, val, known)
        for i in known:
            scores.pop(i, None)
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [(self.video_ids[i], s) for i, s in best]

    # -- persistence --
    def save(self, folder: Path) -> None:
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "vectors.npy", self.embedding.item_factors)
        (folder / "video_ids.json").write_text(json.dumps(self.video_ids))
        # One .npy per array, so every serving process maps them read-only and shares the pages
        # (three 50-wide neighbour tables are 1.2 GB at a million videos).
        (folder / "tables").mkdir(exist_ok=True)
        for name, (idx, val) in self.tables.items():
            np.save(folder / "tables" / f"{name}_idx.npy", idx)
            np.save(folder / "tables" / f"{name}_val.npy", val)
        faiss.write_index(self.index, str(folder / "index.faiss"))
        if self.index_rows is not None:
            np.save(folder / "index_rows.npy", self.index_rows)
        if self.ranker is not None:
            self.ranker.save(folder / "ranker")
        manifest = dict(self.manifest)
        manifest["version"] = self.version
        manifest["embedding"] = {
            "factors": self.embedding.factors,
            "regularization": self.embedding.regularization,
            "alpha": self.embedding.alpha,
        }
        # The manifest goes last: a folder with a manifest is a complete version.
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))

    @classmethod
    def load(cls, folder: Path) -> Models:
        import faiss

        manifest = json.loads((folder / MANIFEST).read_text())
        emb = manifest["embedding"]
        fetching = prefetch(folder)
        # Versions are immutable once published: map the arrays and the index's vectors
        # read-only, so the workers of a machine share one copy in the page cache.
        vectors = _mapped(folder / "vectors.npy")
        embedding = EmbeddingModel(vectors, float(emb["regularization"]), float(emb["alpha"]))
        # Interned: the very string objects the catalog index and the online state key their
        # records by, so a candidate found here is looked up there by identity (a cold
        # million-entry dict's look-up with an equal but distinct key also reads that key's
        # characters: about 1.5-2.0 against 0.9 us), and the model holds no copy of its own.
        video_ids = [sys.intern(v) for v in json.loads((folder / "video_ids.json").read_text())]
        if (folder / "tables").is_dir():
            tables = {
                t: (
                    _mapped(folder / "tables" / f"{t}_idx.npy"),
                    _mapped(folder / "tables" / f"{t}_val.npy"),
                )
                for t in TABLES
            }
        else:  # versions written before the tables were split
            with np.load(folder / "tables.npz") as z:
                tables = {t: (z[f"{t}_idx"], z[f"{t}_val"]) for t in TABLES}
        index = faiss.read_index(str(folder / "index.faiss"), faiss.IO_FLAG_MMAP_IFC)
        _tune_loaded(index, manifest)
        rows_file = folder / "index_rows.npy"  # absent: a version whose labels are the rows
        index_rows = _mapped(rows_file) if rows_file.exists() else None
        # Serving searches one query at a time, where OpenMP threads cost more than they
        # save (2-3x slower with two threads on this machine kind, DESIGN.md).
        faiss.omp_set_num_threads(1)
        ranker_dir = folder / "ranker"
        ranker = Ranker.load(ranker_dir) if (ranker_dir / "ranker.json").exists() else None
        models = cls(
            manifest["version"], video_ids, embedding, index, tables, ranker, manifest, index_rows
        )
        models.prefetching = fetching
        return models

    def warm_up(self, searches: int = 32, wait_s: float = 120.0) -> None:
        """Make the first requests as fast as the rest: wait (up to ``wait_s``) for the files
        to be read into the page cache, then run ``searches`` index searches and table reads
        from random videos, which map the index's upper layers into this process (measured on
        a million videos: the first search of a fresh process took 59 ms, the fifth 15 ms, the
        steady state 2.5 ms)."""
        if self.prefetching is not None:
            self.prefetching.join(wait_s)
        n = len(self.video_ids)
        if n == 0:
            return
        rng = np.random.default_rng(0)
        for i in rng.choice(n, size=min(searches, n), replace=False).tolist():
            self.search(self.vectors[i], min(500, n))
            for table in self.tables:
                self._row(table, self.video_ids[i], 10)


def _mapped(path: Path) -> npt.NDArray[Any]:
    """The array in ``path`` mapped read-only, as a plain ndarray over the mapping (which it
    keeps open): indexing an ``np.memmap`` runs its Python ``__getitem__`` and
    ``__array_finalize__`` every time (a row slice 1.13 against 0.14 us), and a feed slices
    the neighbour tables once per seed video."""
    return np.asarray(np.load(path, mmap_mode="r"))


def prefetch(folder: Path) -> threading.Thread:
    """Read a version's files once in a background thread, so the kernel holds them in the page
    cache: the mapped arrays and index are then touched at memory speed from the first
    requests on, instead of one disk read per page fault (a search over a million-video HNSW
    index touches pages all over its file; the kernel's own read-ahead hint stops at a few
    megabytes a file). The reads release the GIL; the thread ends when it is done."""

    def run() -> None:
        buf = bytearray(1 << 22)
        for path in sorted(folder.rglob("*")):
            try:
                with path.open("rb", buffering=0) as f:
                    while f.readinto(buf):
                        pass
            except OSError:
                continue  # a directory, or a version being deleted: nothing to warm

    t = threading.Thread(target=run, name="model-prefetch", daemon=True)
    t.start()
    return t


def index_kind(n: int, kind: str, exact_below: int) -> str:
    if kind != "auto":
        return kind
    return "flat" if n < exact_below else "hnsw_sq8"


def build_index(
    vectors: F32,
    kind: str = "flat",
    hnsw_m: int = 32,
    ef_search: int = 512,
    nprobe: int = 64,
    seed: int = 42,
) -> Any:
    """Inner-product index over video vectors.

    ``flat`` is exact (100k x 128, top 500: 2 ms a query on one core); ``hnsw`` keeps 98% of
    the exact top 500 at 1.5 ms but is slow to build (37 s per 100k videos on one core);
    ``hnsw_sq8`` is the same graph over 8-bit codes of the vectors (a quarter of their bytes):
    at a million videos it kept the same share of the exact top 300 as ``hnsw`` (0.753 against
    0.754) in 13-21% less time, from a file 36% smaller; ``ivf`` (sqrt(n) lists, k-means on a
    sample) builds in a second but needs many probes for a top 500 (83% at nprobe 64). Figures
    in docs/benchmarks.md.
    """
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    index: Any
    if kind == "flat" or n < 1000:
        index = faiss.IndexFlatIP(d)
    elif kind in ("hnsw", "hnsw_sq8"):
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        else:
            # 8-bit codes on a range trained per dimension
            index = faiss.index_factory(d, f"HNSW{hnsw_m},SQ8", faiss.METRIC_INNER_PRODUCT)
            index.train(x)
        index.hnsw.efConstruction = 200
        index.hnsw.efSearch = ef_search
    elif kind == "ivf":
        nlist = max(1, min(int(np.sqrt(n)), n // 39))
        index = faiss.index_factory(d, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        sample = x
        if n > 64 * nlist:
            rows = np.random.default_rng(seed).choice(n, 64 * nlist, replace=False)
            sample = x[np.sort(rows)]
        index.train(sample)
        index.nprobe = min(nprobe, nlist)
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.add(x)
    return index


def localize(index: Any) -> I64 | None:
    """Store an HNSW index's vectors and links in breadth-first order of its bottom layer, from
    the entry point: a search walks from a node to its neighbours, which are then mostly
    stored near it, instead of a million-entry file's worth apart. Other kinds are left as they
    are. Returns the row of each label of the reordered index (its labels are no longer the
    rows), or None when nothing moved.

    At a million videos (64 factors, HNSW32 over 8-bit codes) a search for the top 300 at
    efSearch 512 took 0.65-0.69 ms against 0.97-1.01 in the order of the rows, with the same
    results; ordering and permuting take 2-4 s (docs/benchmarks.md).
    """
    import faiss
    import scipy.sparse as sp
    from scipy.sparse.csgraph import breadth_first_order

    hnsw = getattr(index, "hnsw", None)
    n = int(index.ntotal)
    if hnsw is None or n < 2:
        return None
    offsets = faiss.vector_to_array(hnsw.offsets).astype(np.int64)
    links = faiss.vector_to_array(hnsw.neighbors)
    per_level = faiss.vector_to_array(hnsw.cum_nneighbor_per_level)
    width = int(per_level[1] - per_level[0])  # a node's links on the bottom layer come first
    # The bottom layer as a CSR matrix straight from the link lists, gathered a block of nodes
    # at a time and kept as int32: at a million nodes this ordering adds 755 MB to the
    # process's peak, against 1,148 MB through a COO matrix (docs/benchmarks.md).
    step = 1 << 16
    dst = np.concatenate(
        [
            links[offsets[lo : min(n, lo + step), None] + np.arange(width)].ravel()
            for lo in range(0, n, step)
        ]
    ).astype(np.int32, copy=False)
    real = dst >= 0  # -1 pads a node's unused links
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(real.reshape(n, width).sum(axis=1), out=indptr[1:])
    cols = dst[real]
    del dst, real
    graph = sp.csr_matrix((np.ones(len(cols), np.int8), cols, indptr), shape=(n, n))
    reached = breadth_first_order(graph, int(hnsw.entry_point), return_predecessors=False)
    order: I64 = np.asarray(reached, dtype=np.int64)
    if len(order) < n:  # nodes the entry point does not reach go last, in row order
        left = np.ones(n, dtype=bool)
        left[order] = False
        order = np.concatenate([order, np.flatnonzero(left).astype(np.int64)])
    index.permute_entries(order)  # the vector at new label i is the one of row order[i]
    return order


def _tune_loaded(index: Any, manifest: dict[str, Any]) -> None:
    params = manifest.get("index", {})
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = int(params.get("ef_search", 512))
    if hasattr(index, "nprobe"):
        index.nprobe = int(params.get("nprobe", 64))


@dataclass(frozen=True)
class VersionInfo:
    version: str
    created: str
    active: bool
    videos: int
    users: int
    events: int
    recall: float | None


class ModelRegistry:
    """The model versions under ``models_dir`` and the one the active pointer names.

    Args:
        settings: where models live (``training.models_dir``) and how often to re-check
            (``training.reload_seconds``).
        clock: monotonic seconds (tests pass a fake one).
        background: load a newly activated version in a background thread while
            :meth:`current` keeps returning the loaded one (for servers: no request waits for a
            load, and none blocks the event loop). Off, the caller that notices the change
            loads it (simple and deterministic: the CLI and tests).
    """

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        background: bool = False,
    ) -> None:
        self.root = models_dir(settings)
        self.reload_seconds = settings.training.reload_seconds
        self._clock = clock
        self._background = background
        self._models: Models | None = None
        self._checked = -float("inf")
        self._lock = threading.Lock()
        self._loading: threading.Thread | None = None
        self._failed: str | None = None

    # -- serving --
    def current(self) -> Models | None:
        """The active version's models, hot-swapped when the pointer moves; never raises.

        Cheap enough for every request: between checks it returns the loaded models; a check
        reads one small file.
        """
        now = self._clock()
        if now - self._checked < self.reload_seconds:
            return self._models
        # One thread re-checks; the others keep serving what is loaded meanwhile.
        blocking = self._models is None and not self._background
        if not self._lock.acquire(blocking=blocking):
            return self._models
        try:
            if now - self._checked >= self.reload_seconds:
                self._checked = self._clock()
                wanted = self._wanted()
                if wanted is not None:
                    if self._background:
                        self._load_in_background(wanted)
                    else:
                        self._load(wanted)
        finally:
            self._lock.release()
        return self._models

    def refresh(self) -> Models | None:
        """Load the active version now if it is not the loaded one (e.g. at start-up)."""
        with self._lock:
            self._checked = self._clock()
            wanted = self._wanted()
            if wanted is not None:
                self._load(wanted)
        return self._models

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background load in progress (tests)."""
        thread = self._loading
        if thread is not None:
            thread.join(timeout)

    def _wanted(self) -> str | None:
        """The active version when it differs from the loaded one and has not failed."""
        try:
            wanted = self.active_version()
        except OSError as e:
            log.warning("cannot read the active model pointer: %s", e)
            return None
        loaded = self._models.version if self._models is not None else None
        if wanted is None or wanted == loaded or wanted == self._failed:
            return None
        return wanted

    def _load_in_background(self, version: str) -> None:
        if self._loading is not None and self._loading.is_alive():
            return  # the next check after it finishes picks up any newer pointer

        self._loading = threading.Thread(
            target=self._load, args=(version,), name="fyp-model-load", daemon=True
        )
        self._loading.start()

    def _load(self, version: str) -> None:
        loaded = self._models.version if self._models is not None else None
        try:
            t0 = time.perf_counter()
            models = Models.load(self.root / version)
            models.warm_up()  # before the swap: no request ever meets a cold index
        except Exception:
            log.exception("model version %s failed to load; keeping %s", version, loaded)
            self._failed = version
            return
        self._models = models  # one reference assignment: readers see old or new, never half
        self._failed = None
        log.info("models %s loaded in %.2fs (was %s)", version, time.perf_counter() - t0, loaded)

    # -- management --
    def active_version(self) -> str | None:
        try:
            name = (self.root / ACTIVE).read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def versions(self) -> builtins.list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).exists()
        )

    def manifest(self, version: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / version / MANIFEST).read_text())
        return data

    def list(self) -> builtins.list[VersionInfo]:
        active = self.active_version()
        out = []
        for v in self.versions():
            m = self.manifest(v)
            counts = m.get("counts", {})
            metrics = m.get("metrics", {}).get("fyp", {})
            out.append(
                VersionInfo(
                    version=v,
                    created=str(m.get("created", "")),
                    active=v == active,
                    videos=int(counts.get("videos", 0)),
                    users=int(counts.get("users", 0)),
                    events=int(counts.get("events", 0)),
                    recall=metrics.get("recall"),
                )
            )
        return out

    def load(self, version: str) -> Models:
        return Models.load(self.root / version)

    def activate(self, version: str) -> None:
        """Point ACTIVE at ``version`` (after checking it loads): activation and rollback."""
        if version not in self.versions():
            raise KeyError(f"no model version {version!r} in {self.root}")
        self.load(version)
        tmp = self.root / f".{ACTIVE}.{os.getpid()}.{threading.get_ident()}"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.root / ACTIVE)
        self._checked = -float("inf")  # this process sees it on its next call

    def publish(self, models: Models) -> Path:
        """Write ``models`` as a new version folder, complete before it becomes visible."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / models.version
        if final.exists():
            raise FileExistsError(f"model version {models.version} exists already")
        tmp = self.root / f".tmp-{models.version}"
        shutil.rmtree(tmp, ignore_errors=True)
        models.save(tmp)
        os.replace(tmp, final)
        return final

    def prune(self, keep: int) -> builtins.list[str]:
        """Delete the oldest versions beyond ``keep``, never the active one."""
        active = self.active_version()
        old = [v for v in self.versions() if v != active]
        doomed = old[: max(0, len(old) - (keep - (1 if active else 0)))]
        for v in doomed:
            shutil.rmtree(self.root / v, ignore_errors=True)
        return doomed
