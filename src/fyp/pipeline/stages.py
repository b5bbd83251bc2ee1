"""The stage Protocols of a feed pipeline. Each has a ``name`` (its log and metrics label),
``enabled(query)``, and one verb. The runner (``fyp.pipeline.runner``) enforces the contracts
stated here: a stage that breaks one, raises, or overruns its budget is skipped and logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from fyp.pipeline.candidate import Candidate
from fyp.pipeline.query import Query


class Stage(Protocol):
    name: str

    def enabled(self, query: Query) -> bool:
        """False skips the stage for this request (e.g. it is in ``disabled_stages``)."""


class Source(Stage, Protocol):
    """Finds candidates. Returns at most its quota, best first, with its own score on each.

    A source that needs models returns nothing when none is active.
    """

    async def get_candidates(self, query: Query) -> list[Candidate]: ...


class Hydrator(Stage, Protocol):
    """Adds data to candidates. Must return the same candidates in the same order; dropping
    candidates is a filter's job. The runner hands it copies: it may set their attributes but
    must replace, never mutate, their dict fields (shared with the originals)."""

    async def hydrate(self, query: Query, cands: list[Candidate]) -> list[Candidate]: ...


@dataclass
class FilterResult:
    kept: list[Candidate]
    removed: list[Candidate] = field(default_factory=list)


class Filter(Stage, Protocol):
    """The only stage that drops candidates; ``kept`` and ``removed`` partition the input.

    Filters fail closed: if one raises, the runner keeps nothing rather than serve unchecked
    candidates, and a slow filter is never skipped for its time. ``relaxable`` filters
    (never-repeat) give back their removed candidates when the catalog is exhausted.
    """

    relaxable: bool

    def filter(self, query: Query, cands: list[Candidate]) -> FilterResult: ...


class Scorer(Stage, Protocol):
    """Sets ``predictions``/``parts``/``score``. Must return the same candidates in the same
    order: dropping candidates in a scorer is not allowed (use a filter). Like hydrators it
    gets copies and replaces dict fields instead of mutating them."""

    def score(self, query: Query, cands: list[Candidate]) -> list[Candidate]: ...


class Selector(Stage, Protocol):
    """Chooses and orders at most ``k`` of the candidates (a subset, no duplicates)."""

    def select(self, query: Query, cands: list[Candidate], k: int) -> list[Candidate]: ...


class SideEffect(Stage, Protocol):
    """Runs after the response is built and never changes it; failures are logged, not raised."""

    def run(self, query: Query, served: list[Candidate]) -> None: ...


class StageBase:
    """Default ``name`` (the class name) and ``enabled`` (not listed in disabled_stages)."""

    name: str = ""
    relaxable: bool = False
    # A required stage that overruns its budget is logged but kept (filters always are): the
    # page cannot be built without it. Failures still skip it.
    required: bool = False
    # The candidate fields a hydrator or scorer sets (empty: any of them). The runner saves only
    # these before the stage runs and restores them if it is skipped, so a stage must not set
    # a field it does not declare.
    writes: tuple[str, ...] = ()
    # A side effect that may wait on I/O when it runs (a store write): the feed runs the side
    # effects on a worker thread after the response when any enabled one does. One that only
    # hands its work to a background writer sets this False, and then they run on the event
    # loop, which costs less than handing them to a thread on every request.
    blocks: bool = True

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def enabled(self, query: Query) -> bool:
        return self.name not in query.settings.disabled_stages
