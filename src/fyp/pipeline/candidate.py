"""A feed candidate as it moves through the stages."""

from __future__ import annotations

import math
from collections.abc import ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fyp.pipeline.catalog_index import VideoMeta


class _NoValues(Mapping[str, float]):
    """The empty mapping every candidate starts with, one for all of them: the merge sets a
    candidate's ``sources`` and stages replace its ``features``, ``predictions`` and ``parts``,
    never mutate them, so sharing it saves four dicts for each of the thousand-odd candidates
    the sources of a request make. Immutable (no stage can write into it by mistake) and
    hashable (a dataclass default must be)."""

    __slots__ = ()

    def __getitem__(self, name: str) -> float:
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __hash__(self) -> int:
        return 0

    # Mapping's own, spelled out: compiled by mypyc (fyp.ops.compiled) the class would not
    # inherit it and would compare by identity.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and len(other) == 0

    def __repr__(self) -> str:
        return "{}"


NO_VALUES: Mapping[str, float] = _NoValues()
# Whether this module was compiled by mypyc (``fyp.ops.compiled``).
_COMPILED = not __file__.endswith(".py")


@dataclass(slots=True)
class Candidate:
    """One video under consideration for one request.

    Attributes:
        source: the source that found it best (its reason code); ``sources`` holds every
            source's score for it (set by the merge of the sources' candidates).
        exploration: served on an exploration slot (the fresh pool's bandit).
        features: named ranker features, logged with the served item (a ``Row`` of the
            request's feature matrix, or any mapping).
        predictions: predicted probability per action (ranker or heuristic).
        parts: the additive parts of ``score`` (for explanations).
        repeat: already served within the horizon; only used when the catalog is exhausted.
    """

    video_id: str
    source: str
    source_score: float = 0.0
    sources: Mapping[str, float] = NO_VALUES
    rank_frac: float = 1.0
    exploration: bool = False
    meta: VideoMeta | None = None
    features: Mapping[str, float] = NO_VALUES
    predictions: Mapping[str, float] = NO_VALUES
    parts: Mapping[str, float] = NO_VALUES
    score: float = math.nan
    repeat: bool = False

    # The dataclass's own ``__init__`` would be generated Python even when this module is
    # compiled (``fyp.ops.compiled``): spelled out, compiled code builds a candidate with one
    # native call (a request makes about a thousand). The defaults are the fields' (a test
    # checks that they agree).
    def __init__(
        self,
        video_id: str,
        source: str,
        source_score: float = 0.0,
        sources: Mapping[str, float] = NO_VALUES,
        rank_frac: float = 1.0,
        exploration: bool = False,
        meta: VideoMeta | None = None,
        features: Mapping[str, float] = NO_VALUES,
        predictions: Mapping[str, float] = NO_VALUES,
        parts: Mapping[str, float] = NO_VALUES,
        score: float = math.nan,
        repeat: bool = False,
    ) -> None:
        self.video_id = video_id
        self.source = source
        self.source_score = source_score
        self.sources = sources
        self.rank_frac = rank_frac
        self.exploration = exploration
        self.meta = meta
        self.features = features
        self.predictions = predictions
        self.parts = parts
        self.score = score
        self.repeat = repeat

    @property
    def creator_id(self) -> str | None:
        return self.meta.creator_id if self.meta else None


class Row(Mapping[str, float]):
    """One candidate's named values as a row of a per-request matrix (features, predictions,
    score parts): a stage reads or writes the matrix in one piece (``matrix_of``), the served
    log, the reasons and explanations read names. A NaN cell is a missing name: NaN in the
    matrix, absent from the mapping."""

    __slots__ = ("index", "matrix", "names", "row")

    def __init__(
        self,
        matrix: npt.NDArray[np.float64],
        names: Sequence[str],
        index: Mapping[str, int],
        row: int,
    ) -> None:
        self.matrix, self.names, self.index, self.row = matrix, names, index, row

    def __getitem__(self, name: str) -> float:
        v = float(self.matrix[self.row, self.index[name]])
        if math.isnan(v):
            raise KeyError(name)
        return v

    def __iter__(self) -> Iterator[str]:
        values = self.matrix[self.row]
        return (n for n, v in zip(self.names, values.tolist(), strict=True) if not math.isnan(v))

    def __len__(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.matrix[self.row])))

    def as_dict(self) -> dict[str, float]:
        """The row as a plain dict, from one read of its values: through ``Mapping`` every name
        is looked up again (18.5 against 7.0 us for a 31-feature row), and the served log and
        the reasons read every name."""
        values = self.matrix[self.row].tolist()
        return {n: v for n, v in zip(self.names, values, strict=True) if v == v}  # not NaN

    # Mapping's views would look every name up again: these are the dict's own.
    def keys(self) -> KeysView[str]:
        return self.as_dict().keys()

    def items(self) -> ItemsView[str, float]:
        return self.as_dict().items()

    def values(self) -> ValuesView[float]:
        return self.as_dict().values()

    def __eq__(self, other: object) -> bool:  # spelled out, as for ``_NoValues``
        return isinstance(other, Mapping) and self.as_dict() == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # a mapping, as Mapping's own __eq__ makes it

    def __repr__(self) -> str:
        return f"Row({dict(self)!r})"


def rows_of(
    matrix: npt.NDArray[np.float64],
    names: Sequence[str],
    index: Mapping[str, int] | None = None,
) -> list[Row]:
    """Each row of ``matrix`` (columns ``names``, at ``index`` when the caller has it) as a
    ``Row``. A request makes about 1,500 of them: they are built without a call of
    ``Row.__init__`` each (67 against 100 us for 300)."""
    if index is None:
        index = {name: j for j, name in enumerate(names)}
    if _COMPILED:  # there a call is cheap, and ``Row.__new__`` runs ``__init__``
        return [Row(matrix, names, index, i) for i in range(matrix.shape[0])]
    out: list[Row] = []
    new, add = Row.__new__, out.append
    for i in range(matrix.shape[0]):
        r = new(Row)
        r.matrix = matrix
        r.names = names
        r.index = index
        r.row = i
        add(r)
    return out


def matrix_of(
    given: Sequence[Mapping[str, float]], names: Sequence[str]
) -> npt.NDArray[np.float64]:
    """The named values of ``given`` as an (n, len(names)) matrix, NaN where missing: a gather
    from the stage's matrix when every mapping is a ``Row`` of the same one, else name by name."""
    n = len(given)
    first = given[0] if n else None
    if isinstance(first, Row) and all(
        isinstance(f, Row) and f.matrix is first.matrix for f in given
    ):
        rows = np.fromiter((f.row for f in given if isinstance(f, Row)), np.intp, n)
        out = np.full((n, len(names)), math.nan)
        have = [(j, first.index[name]) for j, name in enumerate(names) if name in first.index]
        if have:
            dst, src = (np.array(x, dtype=np.intp) for x in zip(*have, strict=True))
            out[:, dst] = first.matrix[np.ix_(rows, src)]
        return out
    return np.array(
        [[f.get(name, math.nan) for name in names] for f in given], dtype=np.float64
    ).reshape(n, len(names))


def feature_matrix(cands: Sequence[Candidate], names: Sequence[str]) -> npt.NDArray[np.float64]:
    """The named features of ``cands`` (see ``matrix_of``)."""
    return matrix_of([c.features for c in cands], names)


def add_part(cands: Sequence[Candidate], name: str, values: npt.NDArray[np.float64]) -> None:
    """Add one score part per candidate (NaN: none for that candidate) to its ``parts`` and
    ``score``: a matrix with one more column when every candidate's parts are rows of the same
    one (the blend's), else a new dict per candidate. ``parts`` is replaced, never mutated."""
    n = len(cands)
    if n == 0:
        return
    given = [c.parts for c in cands]
    first = given[0]
    if (
        isinstance(first, Row)
        and name not in first.index
        and all(isinstance(p, Row) and p.matrix is first.matrix for p in given)
    ):
        names = (*first.names, name)
        old = first.matrix[np.fromiter((p.row for p in given if isinstance(p, Row)), np.intp, n)]
        for c, row in zip(cands, rows_of(np.column_stack([old, values]), names), strict=True):
            c.parts = row
    else:
        for c, v in zip(cands, values.tolist(), strict=True):
            if not math.isnan(v):
                c.parts = {**c.parts, name: v}
    for c, v in zip(cands, values.tolist(), strict=True):
        if not math.isnan(v):
            c.score += v
