"""Recall and time of the ANN index the embedding source searches, against an exact scan, on the
world ``bench/feed.py`` built: the trade a smaller or larger ``training.hnsw_ef_search`` makes.

User vectors are the ones the feed would search with: ``FeedService.build_query`` for random
users (their recent engagements folded in, as on a request). For each efSearch the index answers
k nearest for every user; recall@k is the share of the exact top k it returns, and "top-100" the
share of the exact top 100 among its first 100 (the part of the source's list the candidate cap
keeps at the default quotas). Time is the mean search (``Models.search_rows``, the feed's own
call) with the index warm.

    .venv/bin/python bench/ann_recall.py [--world DIR] [--users 200] [--k 300]
        [--ef 512,400,300]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from feed import clear_served, db_url, trained_world
from fyp.api.app import create_app
from fyp.config import Settings
from fyp.simulator.world import ids


def exact_top(queries: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """The k largest dot products per query, best first (in blocks: 1M x 64 a query)."""
    out = []
    for i in range(0, len(queries), 32):
        s = queries[i : i + 32] @ items.T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, top, 1), axis=1)
        out.append(np.take_along_axis(top, order, 1))
    return np.concatenate(out)


async def user_vectors(
    settings: Settings, users: list[str], n: int, seed: int
) -> tuple[np.ndarray, Any]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        feed = app.state.services.feed
        rng = random.Random(seed)
        vectors: list[np.ndarray] = []
        models = None
        for _ in range(n * 20):
            q = feed.build_query(users[rng.randrange(len(users))], 10, None)
            if q.user_vector is not None:
                vectors.append(np.asarray(q.user_vector, dtype=np.float32))
                models = q.models
            if len(vectors) == n:
                break
        if models is None:
            sys.exit("no user had a vector: is the world trained?")
        return np.stack(vectors), models


def overlap(found: list[np.ndarray], exact: np.ndarray, n: int) -> float:
    """Mean share of each exact top ``n`` among the first ``n`` found."""
    shares = [
        len(set(f[:n].tolist()) & set(e[:n].tolist())) / n
        for f, e in zip(found, exact, strict=True)
    ]
    return float(np.mean(shares))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--world", type=Path, help="default: bench/feed.py's default world")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--k", type=int, default=300, help="the embedding source's quota")
    p.add_argument("--ef", default="512,400,300", help="efSearch values, comma-separated")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    world, meta = trained_world(args.world)
    clear_served(world)
    settings = Settings(
        database_url=db_url(world),
        var_dir=world / "var",
        _env_file=None,  # type: ignore[call-arg]
    )
    queries, models = asyncio.run(
        user_vectors(settings, ids("u", meta["spec"]["users"]), args.users, args.seed)
    )
    index = models.index
    if not hasattr(index, "hnsw"):
        sys.exit(f"the index is {type(index).__name__}, not HNSW")
    items = np.asarray(models.embedding.item_factors, dtype=np.float32)
    k = min(args.k, len(items) - 1)
    exact = exact_top(queries, items, k)
    top = min(100, k)
    print(f"{len(queries)} users, k = {k}, {len(items):,} videos, exact scan as the truth")
    for ef in (int(x) for x in args.ef.split(",")):
        if ef < k:
            print(f"efSearch {ef}: below k, which faiss searches with instead; skipped")
            continue
        index.hnsw.efSearch = ef
        models.search_rows(queries[0], k)  # warm
        t = time.perf_counter()
        # the feed's own search: the rows of the videos found, whatever the index's labels
        found = [np.array(models.search_rows(q, k)[0]) for q in queries]
        ms = (time.perf_counter() - t) / len(queries) * 1000
        rk, rt = overlap(found, exact, k), overlap(found, exact, top)
        print(f"efSearch {ef}: {ms:.2f} ms a search, recall@{k} {rk:.3f}, top-{top} {rt:.3f}")


if __name__ == "__main__":
    main()
