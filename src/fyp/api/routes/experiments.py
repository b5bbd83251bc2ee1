"""A/B experiments (admin scope): create, list, read, start, stop, and their results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

from fyp.api.deps import AdminKey, Services, ServicesDep
from fyp.api.errors import ApiError
from fyp.api.responses import JSON
from fyp.experiments.service import ExperimentError, ExperimentService, describe
from fyp.experiments.spec import ExperimentSpec, ExperimentState

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

T = TypeVar("T")


def _service(services: Services) -> ExperimentService:
    return ExperimentService(services.store, services.settings, services.assigner)


def _call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ExperimentError as e:
        raise ApiError(e.status, e.code, e.message) from e


@router.post(
    "",
    summary="Create an experiment (a draft; the first arm is the control)",
    status_code=201,
)
def create_experiment(body: ExperimentSpec, services: ServicesDep, _: AdminKey) -> dict[str, Any]:
    return describe(_call(lambda: _service(services).create(body)))


@router.get("", summary="List experiments, optionally in one state")
def list_experiments(
    services: ServicesDep, _: AdminKey, state: ExperimentState | None = None
) -> dict[str, list[dict[str, Any]]]:
    return {"experiments": [describe(e) for e in _service(services).list(state)]}


@router.get("/{name}", summary="Read an experiment")
def get_experiment(name: str, services: ServicesDep, _: AdminKey) -> dict[str, Any]:
    return describe(_call(lambda: _service(services).get(name)))


@router.post("/{name}/start", summary="Start assigning users to the arms (draft -> running)")
def start_experiment(name: str, services: ServicesDep, _: AdminKey) -> dict[str, Any]:
    return describe(_call(lambda: _service(services).start(name)))


@router.post("/{name}/stop", summary="Stop the experiment (running -> stopped); results stay")
def stop_experiment(name: str, services: ServicesDep, _: AdminKey) -> dict[str, Any]:
    return describe(_call(lambda: _service(services).stop(name)))


@router.get(
    "/{name}/results",
    summary="SRM check, then per metric: arm values, difference, 95% CI, p-value",
    response_model=None,
)
def experiment_results(name: str, services: ServicesDep, _: AdminKey) -> JSON:
    return JSON(_call(lambda: _service(services).results(name)))
