"""Item-to-item tables kept as the top k per video: co-engagement (who engaged with this also
engaged with that) and next-item transitions (what users engage with right after this).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]


def topk_rows(m: sp.csr_matrix, k: int, exclude_diagonal: bool = True) -> tuple[I32, F32]:
    """The k largest entries of each row, best first, as (index, value) arrays padded by -1/0."""
    n = m.shape[0]
    idx = np.full((n, k), -1, np.int32)
    val = np.zeros((n, k), np.float32)
    m = sp.csr_matrix(m)
    if exclude_diagonal:
        m = sp.csr_matrix(m - sp.diags(m.diagonal()))
        m.eliminate_zeros()
    for r in range(n):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        if hi == lo:
            continue
        cols, data = m.indices[lo:hi], m.data[lo:hi]
        if data.size > k:
            part = np.argpartition(-data, k - 1)[:k]
            cols, data = cols[part], data[part]
        order = np.lexsort((cols, -data))  # ties go to the lower index, run to run
        idx[r, : order.size] = cols[order]
        val[r, : order.size] = data[order]
    return idx, val


def co_engagement(
    positives: sp.csr_matrix,
    k: int,
    sequences: Sequence[I64] | None = None,
    max_history: int = 1000,
    shrink: float = 5.0,
) -> tuple[I32, F32]:
    """Top-k videos by shrunk cosine of their engaged-user sets.

    ``cos(a, b) = |U_a ∩ U_b| / (sqrt(|U_a| |U_b|) + shrink)``: the shrink term keeps pairs
    seen together once or twice from outranking well-supported ones. Each user contributes at
    most ``max_history`` of their latest positives, so a heavy user cannot blow up the product.
    """
    x = sp.csr_matrix(positives, dtype=np.float32)
    x.data[:] = 1.0
    if sequences is not None:
        x = _latest(x, sequences, max_history)
    counts = np.asarray(x.sum(axis=0)).ravel()
    co = sp.coo_matrix(x.T @ x)
    off = co.row != co.col
    r, c = co.row[off], co.col[off]
    sims = co.data[off] / (np.sqrt(counts[r] * counts[c]) + shrink)
    m = sp.csr_matrix((sims, (r, c)), shape=co.shape, dtype=np.float32)
    return topk_rows(m, k, exclude_diagonal=False)


def _latest(x: sp.csr_matrix, sequences: Sequence[I64], max_history: int) -> sp.csr_matrix:
    lil = sp.lil_matrix(x)
    for u in np.flatnonzero(np.diff(x.indptr) > max_history):
        seq = sequences[int(u)]
        latest = seq[-max_history:] if seq.size else lil.rows[u][-max_history:]
        lil.rows[u] = sorted({int(i) for i in latest})
        lil.data[u] = [1.0] * len(lil.rows[u])
    return sp.csr_matrix(lil)


def transitions(sequences: Sequence[I64], n_items: int, k: int, window: int = 3) -> tuple[I32, F32]:
    """Top-k next videos per video: P(b follows a within ``window`` steps), nearer steps
    counting more (weight 1/d at distance d), normalised per source video."""
    rows: list[I64] = []
    cols: list[I64] = []
    vals: list[npt.NDArray[np.float64]] = []
    for s in sequences:
        for d in range(1, window + 1):
            if s.size > d:
                rows.append(s[:-d])
                cols.append(s[d:])
                vals.append(np.full(s.size - d, 1.0 / d))
    if not rows:
        return np.full((n_items, k), -1, np.int32), np.zeros((n_items, k), np.float32)
    t = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
        dtype=np.float64,
    )
    t.sum_duplicates()
    out = np.asarray(t.sum(axis=1)).ravel()
    normalised = sp.csr_matrix(sp.diags(1.0 / np.maximum(out, 1e-12)) @ t)
    return topk_rows(normalised.astype(np.float32), k)


def blend_rows(idx: I32, val: F32, sources: Sequence[int], decay: float = 0.5) -> dict[int, float]:
    """Sum the rows of ``sources`` (newest last), each older one weighted ``decay`` times less."""
    scores: dict[int, float] = {}
    for age, src in enumerate(reversed(sources)):
        w = decay**age
        for j, v in zip(idx[src].tolist(), val[src].tolist(), strict=True):
            if j < 0:
                break
            scores[j] = scores.get(j, 0.0) + w * v
    return scores
