"""Interaction data sets for offline evaluation, and the splits the protocols use."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass
class Split:
    """Training interactions as a users x items matrix, and held-out items per user.

    Attributes:
        train: CSR matrix of interaction weights (users x items).
        valid: held-out items per user for tuning (may be empty for a user).
        test: held-out items per user for the report, used once.
        item_features: content vectors per item, by name (e.g. "image", "audio").
        item_creator: creator index per item, or None when each item stands alone.
    """

    name: str
    train: sp.csr_matrix
    valid: list[IntArray]
    test: list[IntArray]
    item_features: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict)
    item_creator: IntArray | None = None

    @property
    def n_users(self) -> int:
        return int(self.train.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.train.shape[1])

    def held_out(self, which: str) -> list[IntArray]:
        if which not in ("valid", "test"):
            raise ValueError(f"split part must be 'valid' or 'test', not {which!r}")
        return self.valid if which == "valid" else self.test


def _groups(n_users: int, users: IntArray, items: IntArray) -> list[IntArray]:
    out: list[list[int]] = [[] for _ in range(n_users)]
    for u, i in zip(users.tolist(), items.tolist(), strict=True):
        out[u].append(i)
    return [np.unique(np.asarray(x, dtype=np.int64)) for x in out]


def matrix(
    n_users: int, n_items: int, users: IntArray, items: IntArray, weights: FloatArray | None = None
) -> sp.csr_matrix:
    """A users x items CSR matrix; repeated pairs are summed."""
    data = np.ones(len(users)) if weights is None else weights
    m = sp.csr_matrix((data, (users, items)), shape=(n_users, n_items), dtype=np.float64)
    m.sum_duplicates()
    return m


def load_tiktok(data_dir: Path) -> Split:
    """The TikTok release of the DiffMM paper: given train/valid/test rows, content features."""
    folder = data_dir / "tiktok"
    path = folder / "interactions.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: point --data-dir at the shared data folder")
    parts: dict[str, tuple[list[int], list[int]]] = {
        s: ([], []) for s in ("train", "valid", "test")
    }
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            us, its = parts[row["split"]]
            us.append(int(row["user_id"]))
            its.append(int(row["item_id"]))
    features = {
        name: np.load(folder / f"{name}_feat.npy").astype(np.float32)
        for name in ("image", "audio")
        if (folder / f"{name}_feat.npy").exists()
    }
    n_users = 1 + max(max(u) for u, _ in parts.values() if u)
    n_items = 1 + max(max(i) for _, i in parts.values() if i)
    for f in features.values():
        n_items = max(n_items, f.shape[0])
    arr = {s: (np.asarray(u, np.int64), np.asarray(i, np.int64)) for s, (u, i) in parts.items()}
    return Split(
        name="tiktok",
        train=matrix(n_users, n_items, *arr["train"]),
        valid=_groups(n_users, *arr["valid"]),
        test=_groups(n_users, *arr["test"]),
        item_features=features,
    )


def temporal_leave_one_out(
    name: str,
    users: Sequence[int] | IntArray,
    items: Sequence[int] | IntArray,
    ts: Sequence[int] | IntArray,
    weights: Sequence[float] | FloatArray | None = None,
    min_interactions: int = 3,
) -> Split:
    """Each user's last interaction is test, the one before is valid, the rest train.

    Users with fewer than ``min_interactions`` keep everything in train (they are still
    history for others, and evaluated on nothing).
    """
    u = np.asarray(users, np.int64)
    i = np.asarray(items, np.int64)
    t = np.asarray(ts, np.int64)
    w = np.ones(len(u)) if weights is None else np.asarray(weights, np.float64)
    n_users, n_items = int(u.max()) + 1, int(i.max()) + 1
    order = np.lexsort((np.arange(len(u)), t, u))  # by user, then time, then input order
    u, i, t, w = u[order], i[order], t[order], w[order]
    counts = np.bincount(u, minlength=n_users)
    last = np.cumsum(counts) - 1
    role = np.zeros(len(u), np.int8)  # 0 train, 1 valid, 2 test
    eligible = counts >= min_interactions
    role[last[eligible]] = 2
    role[last[eligible] - 1] = 1
    valid_rows, test_rows = role == 1, role == 2
    train = role == 0
    return Split(
        name=name,
        train=matrix(n_users, n_items, u[train], i[train], w[train]),
        valid=_groups(n_users, u[valid_rows], i[valid_rows]),
        test=_groups(n_users, u[test_rows], i[test_rows]),
    )
