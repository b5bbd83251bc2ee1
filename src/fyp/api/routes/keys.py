from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from fyp.api.deps import AdminKey, ServicesDep
from fyp.api.errors import ApiError
from fyp.api.schemas import KeyCreate
from fyp.auth import create_key
from fyp.models import ApiKey, Scope

router = APIRouter(prefix="/v1/keys", tags=["API keys"])


class NewKey(BaseModel):
    id: str
    scope: Scope
    name: str
    created_at: datetime
    key: str


@router.post("", summary="Create an API key (its secret is shown only here)", status_code=201)
def post_key(body: KeyCreate, services: ServicesDep, _: AdminKey) -> NewKey:
    key, secret = create_key(services.store, body.scope, body.name)
    return NewKey(**key.model_dump(exclude={"revoked"}), key=secret)


@router.get("", summary="List API keys (never their secrets)")
def list_keys(services: ServicesDep, _: AdminKey) -> dict[str, list[ApiKey]]:
    return {"keys": services.store.list_api_keys()}


@router.delete("/{key_id}", summary="Revoke an API key", status_code=204)
def revoke_key(key_id: str, services: ServicesDep, _: AdminKey) -> None:
    if not services.store.revoke_api_key(key_id):
        raise ApiError(404, "not_found", f"no active key {key_id!r}")
