"""The experiment lifecycle (draft -> running -> stopped) over the store, shared by API and CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fyp.config import Settings
from fyp.experiments import metrics
from fyp.experiments.assignment import Assigner, StoreAssigner, free_range
from fyp.experiments.spec import ExperimentRecord, ExperimentSpec, validate_overrides
from fyp.storage.data import DataStore
from fyp.storage.data.base import ExperimentRow
from fyp.types import now_ms


class ExperimentError(Exception):
    """A refused lifecycle step; ``status`` and ``code`` map onto the API's error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ExperimentService:
    def __init__(
        self,
        store: DataStore,
        settings: Settings,
        assigner: Assigner | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.settings = settings
        self.assigner = assigner
        self._clock = clock

    def create(self, spec: ExperimentSpec) -> ExperimentRecord:
        for arm in spec.arms:
            try:
                # Against this server's feed settings, not just the defaults.
                validate_overrides(arm.overrides, self.settings.feed)
            except ValueError as e:
                raise ExperimentError(422, "invalid_experiment", f"arm {arm.name!r}: {e}") from e
        record = ExperimentRecord(spec=spec, created_ms=self._clock())
        if not self.store.create_experiment(_row(record)):
            raise ExperimentError(409, "conflict", f"experiment {spec.name!r} exists already")
        return record

    def get(self, name: str) -> ExperimentRecord:
        row = self.store.get_experiment(name)
        if row is None:
            raise ExperimentError(404, "not_found", f"no experiment {name!r}")
        return _record(row)

    def list(self, state: str | None = None) -> list[ExperimentRecord]:
        return [_record(r) for r in self.store.list_experiments(state)]

    def start(self, name: str) -> ExperimentRecord:
        """Take a free slice of the layer and start assigning users to the arms."""
        exp = self.get(name)
        if exp.state != "draft":
            raise ExperimentError(409, "conflict", f"experiment {name!r} is {exp.state}")
        running = self.list("running")
        buckets = free_range(running, exp.spec.layer, exp.spec.traffic)
        if buckets is None:
            used = sum(
                (e.buckets[1] - e.buckets[0])
                for e in running
                if e.spec.layer == exp.spec.layer
                if e.buckets
            )
            raise ExperimentError(
                409,
                "layer_full",
                f"layer {exp.spec.layer!r} has no free slice of {exp.spec.traffic:.2%} "
                f"({used / 100:.2f}% of its users are in running experiments); "
                "stop one, lower the traffic, or use another layer",
            )
        started = exp.model_copy(
            update={"state": "running", "started_ms": self._clock(), "buckets": buckets}
        )
        return self._transition(started, "draft")

    def stop(self, name: str) -> ExperimentRecord:
        exp = self.get(name)
        if exp.state != "running":
            raise ExperimentError(409, "conflict", f"experiment {name!r} is {exp.state}")
        stopped = exp.model_copy(update={"state": "stopped", "stopped_ms": self._clock()})
        return self._transition(stopped, "running")

    def _transition(self, record: ExperimentRecord, expect: str) -> ExperimentRecord:
        if not self.store.update_experiment(_row(record), expect_state=expect):
            raise ExperimentError(
                409, "conflict", f"experiment {record.name!r} changed meanwhile; read it again"
            )
        if isinstance(self.assigner, StoreAssigner):
            self.assigner.invalidate()
        return record

    def results(self, name: str) -> dict[str, Any]:
        exp = self.get(name)
        if exp.state == "draft":
            raise ExperimentError(409, "not_started", f"experiment {name!r} has not started")
        return metrics.results(self.store, exp, self.settings.experiments, self._clock())


def _row(r: ExperimentRecord) -> ExperimentRow:
    return ExperimentRow(r.name, r.document(), r.state, r.created_ms, r.started_ms, r.stopped_ms)


def _record(r: ExperimentRow) -> ExperimentRecord:
    return ExperimentRecord.from_row(r.spec, r.state, r.created_ms, r.started_ms, r.stopped_ms)


def describe(r: ExperimentRecord) -> dict[str, Any]:
    """The JSON shape of an experiment in the API and the CLI."""
    return {
        **r.spec.model_dump(mode="json"),
        "control": r.spec.control,
        "state": r.state,
        "created_ms": r.created_ms,
        "started_ms": r.started_ms,
        "stopped_ms": r.stopped_ms,
        "buckets": list(r.buckets) if r.buckets else None,
    }
