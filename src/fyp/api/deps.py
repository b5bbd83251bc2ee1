"""FastAPI dependencies: the services container and API-key scopes, as Annotated aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from fyp.api.backpressure import StoreGate
from fyp.api.errors import ApiError
from fyp.auth import KeyChecker, allows
from fyp.catalog import Catalog
from fyp.config import Settings
from fyp.events import EventIngestor
from fyp.experiments.assignment import Assigner, NoExperiments
from fyp.models import ApiKey, Scope
from fyp.pipeline.clients import ModelSource, NoModels
from fyp.pipeline.service import FeedService
from fyp.storage.cache import OnlineState
from fyp.storage.data import DataStore


@dataclass
class Services:
    """Everything a request handler may use, built once per process by ``create_app``."""

    settings: Settings
    store: DataStore
    ingestor: EventIngestor
    catalog: Catalog
    keys: KeyChecker
    # -- experiments -- the feed reads services.assigner.assign(user_id) on every request
    assigner: Assigner = field(default_factory=NoExperiments)
    # -- feed -- online state, the For You feed service, and the model registry
    online: OnlineState | None = None
    feed: FeedService | None = None
    models: ModelSource = field(default_factory=NoModels)
    # -- scale -- bounded, timed-out store calls (429/503 instead of queueing or hanging)
    store_gate: StoreGate = field(default_factory=StoreGate)


async def get_services(request: Request) -> Services:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop through a
    # worker thread and the event loop on every request for one attribute read.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or X-API-Key: <API key>")


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    async def check(
        services: ServicesDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> ApiKey:
        secret = bearer.credentials if bearer is not None else header
        if not secret:
            raise ApiError(
                401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'"
            )
        hit, key = services.keys.cached(secret)
        if not hit:
            key = await services.store_gate.call(services.keys.lookup, secret)  # -- scale --
        if key is None:
            raise ApiError(401, "unauthorized", "unknown or revoked API key")
        if not allows(key.scope, scope):
            raise ApiError(
                403,
                "forbidden",
                f"this needs a key with the '{scope}' scope; yours is '{key.scope}'",
            )
        return key

    return check


AdminKey = Annotated[ApiKey, Depends(require("admin"))]
AppKey = Annotated[ApiKey, Depends(require("app"))]
