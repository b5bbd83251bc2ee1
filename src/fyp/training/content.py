"""Content vectors for videos, so a video with no history can still be found and retrieved.

Two sources, combined per video:

* dense features where the catalog has them (the visual and acoustic vectors of the TikTok
  release): each block is centred, L2-normalised, and the blocks concatenated with equal weight;
* hashed text: hashtags, caption words, creator and sound as tokens, TF-IDF weighted, and
  projected to ``dim`` dimensions by a random projection whose rows are generated from each
  token's hash. We chose this over TruncatedSVD or scipy's ``svds`` because it needs no fit, is
  O(tokens) per video, gives a new video a vector without retraining, and keeps a token's
  direction identical from one training run to the next; cosine on TF-IDF vectors is preserved
  up to ~1/sqrt(dim) noise (Johnson-Lindenstrauss). Tokens used by a single video carry no
  similarity and are dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_TIKTOK_ID = re.compile(r"^tt_v(\d+)$")


def normalise_rows(x: F32) -> F32:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: F32 = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def dense_content(blocks: Sequence[F32]) -> F32:
    """Centred, L2-normalised feature blocks concatenated with equal weight (unit rows)."""
    parts = [normalise_rows((b - b.mean(axis=0)).astype(np.float32)) for b in blocks]
    out: F32 = (np.concatenate(parts, axis=1) / np.sqrt(len(parts))).astype(np.float32)
    return out


def video_tokens(
    hashtags: Sequence[str], caption: str, creator_id: str | None, sound_id: str | None
) -> list[str]:
    tokens = [f"#{t}" for t in hashtags]
    tokens += [w.lower() for w in _WORD.findall(caption) if f"#{w.lower()}" not in tokens]
    if creator_id:
        tokens.append(f"@{creator_id}")
    if sound_id:
        tokens.append(f"~{sound_id}")
    return tokens


def _token_direction(token: str, dim: int, seed: int) -> F32:
    digest = hashlib.blake2b(f"{seed}:{token}".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "little"))
    return rng.standard_normal(dim).astype(np.float32)


def text_content(docs: Sequence[Sequence[str]], dim: int = 128, seed: int = 0) -> F32:
    """TF-IDF of tokens, randomly projected to ``dim``; rows are unit length (or zero)."""
    df = Counter(t for doc in docs for t in set(doc))
    n = len(docs)
    directions: dict[str, F32] = {}
    out = np.zeros((n, dim), np.float32)
    for row, doc in enumerate(docs):
        for token, tf in Counter(doc).items():
            d = df[token]
            if d < 2:
                continue
            vec = directions.get(token)
            if vec is None:
                vec = directions[token] = _token_direction(token, dim, seed)
            out[row] += float(tf * np.log((1 + n) / (1 + d))) * vec
    return normalise_rows(out)


def combine(dense: F32 | None, text: F32 | None) -> F32:
    """Dense and text blocks side by side with equal weight; an all-zero block is dropped."""
    blocks = [b for b in (dense, text) if b is not None and np.any(b)]
    if not blocks:
        raise ValueError("no content block has any signal")
    out: F32 = (np.concatenate(blocks, axis=1) / np.sqrt(len(blocks))).astype(np.float32)
    return out


def tiktok_features(data_dir: Path, video_ids: Sequence[str]) -> F32 | None:
    """Dense visual+acoustic vectors for videos imported from the TikTok release (``tt_v<n>``).

    Returns None unless the feature files exist and at least one video id matches; videos
    without a feature row get a zero vector.
    """
    folder = data_dir / "tiktok"
    paths = [folder / f"{name}_feat.npy" for name in ("image", "audio")]
    if not all(p.exists() for p in paths):
        return None
    rows = []
    for vid in video_ids:
        m = _TIKTOK_ID.match(vid)
        rows.append(int(m.group(1)) if m else -1)
    idx = np.asarray(rows, np.int64)
    if not (idx >= 0).any():
        return None
    feats = dense_content([np.load(p).astype(np.float32) for p in paths])
    ok = (idx >= 0) & (idx < feats.shape[0])
    out = np.zeros((len(video_ids), feats.shape[1]), np.float32)
    out[ok] = feats[idx[ok]]
    return out


def nearest(vectors: F32, k: int, block: int = 4096) -> tuple[I64, F32]:
    """Each row's k most cosine-similar other rows, best first; -1 pads short rows.

    Exact (faiss flat inner product, blocks of queries) up to 50,000 rows; HNSW above.
    """
    import faiss

    x = normalise_rows(vectors)
    n = x.shape[0]
    k = min(k, max(n - 1, 0))
    if k == 0:
        return np.full((n, 0), -1, np.int64), np.zeros((n, 0), np.float32)
    index: Any
    if n > 50_000:
        index = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = max(64, 2 * k)
    else:
        index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    out_i = np.empty((n, k), np.int64)
    out_s = np.empty((n, k), np.float32)
    for lo in range(0, n, block):
        sims, idx = index.search(x[lo : lo + block], k + 1)
        rows = np.arange(lo, lo + idx.shape[0])
        out_i[lo : lo + block], out_s[lo : lo + block] = _drop_self(idx, sims, k, rows)
    return out_i, out_s


def _drop_self(
    idx: npt.NDArray[np.int64], sims: npt.NDArray[np.float32], k: int, rows: I64
) -> tuple[I64, F32]:
    """Remove each row's own index (wherever ties put it) and keep k, padding with -1."""
    keep = (idx != rows[:, None]) & (idx >= 0)
    # stable: kept entries keep their order, dropped ones sink to the end
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    out_i = np.take_along_axis(idx, order, axis=1).astype(np.int64)
    out_s = np.take_along_axis(sims, order, axis=1).astype(np.float32)
    kept = np.take_along_axis(keep, order, axis=1)
    out_i[~kept] = -1
    out_s[~kept] = 0.0
    return out_i, out_s
