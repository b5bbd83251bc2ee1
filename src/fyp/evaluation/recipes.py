"""The engine's own recommenders, wrapped for the harness: they call the same training code
the live feed's artefacts come from (``fyp.training``), and score users by the same fold-in the
online path uses, so the offline figure is the figure of the retrieval that serves."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from fyp.config import EmbeddingSettings
from fyp.evaluation.data import FloatArray, IntArray, Split
from fyp.training import content, embeddings, neighbours

if TYPE_CHECKING:
    from fyp.training.artefacts import Models


def split_content_neighbours(split: Split, k: int = 50) -> IntArray | None:
    """Content neighbours from a split's dense item features (None when it has none)."""
    if not split.item_features:
        return None
    vectors = content.dense_content([split.item_features[n] for n in sorted(split.item_features)])
    idx, _ = content.nearest(vectors, k)
    return idx


class FypEmbedding:
    """Weighted ALS with content pseudo-users; users folded in from their training rows.

    Args:
        settings: embedding hyper-parameters.
        content_neighbours: (items x k) content neighbour indices; computed from the split's
            item features at fit time when None and ``use_content``.
        binary: train on 0/1 instead of the split's weights (the published protocol's data is
            binary anyway).
    """

    def __init__(
        self,
        settings: EmbeddingSettings | None = None,
        content_neighbours: IntArray | None = None,
        use_content: bool = True,
        binary: bool = False,
        name: str = "fyp",
    ) -> None:
        self.settings = settings or EmbeddingSettings()
        self.name = name
        self._nb = content_neighbours
        self._use_content = use_content
        self._binary = binary
        self.model: embeddings.EmbeddingModel | None = None

    def fit(self, split: Split) -> None:
        x = sp.csr_matrix(split.train, dtype=np.float32)
        if self._binary:
            x.data[:] = 1.0
        nb = None
        if self._use_content:
            nb = self._nb if self._nb is not None else split_content_neighbours(split)
        self.model, _ = embeddings.fit(x, self.settings, nb)

    def scores(self, users: IntArray, history: sp.csr_matrix) -> FloatArray:
        assert self.model is not None, "fit first"
        h = sp.csr_matrix(history, dtype=np.float64)
        if self._binary:
            h.data[:] = 1.0
        u = self.model.user_vectors(h)
        out: FloatArray = (u @ self.model.item_factors.T).astype(np.float64)
        return out


class NextItem:
    """The short-term signal alone: next-item transitions from each user's latest positives.

    Needs ordered histories: ``sequences[u]`` are user u's training items, oldest first.
    """

    def __init__(self, sequences: list[IntArray], window: int = 3, k: int = 50) -> None:
        self.name = "fyp-next-item"
        self._seqs = sequences
        self._window = window
        self._k = k
        self._table: tuple[np.ndarray, np.ndarray] | None = None
        self._pop: FloatArray = np.zeros(0)

    def fit(self, split: Split) -> None:
        self._table = neighbours.transitions(self._seqs, split.n_items, self._k, self._window)
        pop = np.asarray((split.train > 0).sum(axis=0), dtype=np.float64).ravel()
        self._pop = pop / max(pop.max(), 1.0)

    def scores(self, users: IntArray, history: sp.csr_matrix) -> FloatArray:
        assert self._table is not None, "fit first"
        idx, val = self._table
        # Popularity, scaled under any transition score, breaks ties so lists are always full.
        out = np.tile(1e-6 * self._pop, (len(users), 1))
        for row, u in enumerate(users.tolist()):
            recent = self._seqs[u][-10:].tolist()
            for j, s in neighbours.blend_rows(idx, val, recent).items():
                out[row, j] += s
        return out


class ActiveModels:
    """A trained model version (``fyp train``) scored through the calls the feed makes: the
    user vector folded in from the user's training videos, then ``search`` over the index.

    Args:
        models: a loaded version (``fyp.training.Models``).
        video_id_of: the split's item index -> the catalog's video id.
    """

    def __init__(self, models: Models, video_id_of: Callable[[int], str]) -> None:
        self.name = f"fyp (model {models.version})"
        self.models = models
        self._vid = video_id_of

    def fit(self, split: Split) -> None:
        n = split.n_items
        self._item_of = {self._vid(i): i for i in range(n)}

    def scores(self, users: IntArray, history: sp.csr_matrix) -> FloatArray:
        out = np.full((len(users), history.shape[1]), -np.inf)
        for row in range(len(users)):
            items = history.indices[history.indptr[row] : history.indptr[row + 1]]
            u = self.models.user_vector([(self._vid(int(i)), 1.0) for i in items])
            if u is None:
                continue
            # as many as the list needs once the user's own videos are masked
            for rank, (vid, _) in enumerate(self.models.search(u, 20 + items.size)):
                i = self._item_of.get(vid)
                if i is not None:
                    out[row, i] = -rank
        return out
