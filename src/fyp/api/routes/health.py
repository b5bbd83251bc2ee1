from __future__ import annotations

from fastapi import APIRouter

from fyp.api.deps import ServicesDep
from fyp.api.responses import JSON
from fyp.storage.data import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> JSON:
    return JSON({"status": "ok"})


@router.get("/readyz", summary="The store is reachable and its schema is current")
def readyz(services: ServicesDep) -> JSON:
    try:
        services.store.ping()
        migration = services.store.migration_status()
    except StoreUnavailable as e:
        return JSON({"status": "not_ready", "reason": f"store: {e}"}, status_code=503)
    if not migration.up_to_date:
        reason = f"schema at {migration.current}, code expects {migration.head}: run `fyp migrate`"
        return JSON({"status": "not_ready", "reason": reason}, status_code=503)
    return JSON({"status": "ready", "schema": migration.current})
