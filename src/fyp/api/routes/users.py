from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fyp.api.deps import AdminKey, AppKey, ServicesDep
from fyp.api.errors import ApiError
from fyp.api.responses import JSON
from fyp.api.schemas import BulkResponse, body_items, json_body, rejections
from fyp.models import User, UserFields
from fyp.types import now_ms

router = APIRouter(prefix="/v1/users", tags=["users and graph"])


class UserBatch(BaseModel):
    users: list[User] = Field(max_length=1000)


def _user_or_404(services: Any, user_id: str) -> User:
    user: User | None = services.store.get_user(user_id)
    if user is None:
        raise ApiError(404, "not_found", f"no user {user_id!r}")
    return user


@router.put("/{user_id}", summary="Create or replace a user", response_model=User)
def put_user(user_id: str, body: UserFields, services: ServicesDep, _: AdminKey) -> User:
    result = services.catalog.upsert_users([{**body.model_dump(), "id": user_id}])
    if result.rejected:
        raise ApiError(422, "invalid_user", result.rejected[0].reason)
    return _user_or_404(services, user_id)


@router.post(
    "",
    summary="Create or replace up to 1,000 users",
    response_model=None,
    responses={200: {"model": BulkResponse}},
    openapi_extra=json_body(UserBatch),
)
async def post_users(request: Request, services: ServicesDep, _: AdminKey) -> JSON:
    items = body_items(await request.body(), "users")
    result = await run_in_threadpool(services.catalog.upsert_users, items)
    status = 422 if result.rejected and not result.stored else 200
    body = {"received": result.received, "stored": result.stored}
    return JSON({**body, "rejected": rejections(result.rejected)}, status_code=status)


@router.get("/{user_id}", summary="Read a user", response_model=User)
def get_user(user_id: str, services: ServicesDep, _: AppKey) -> User:
    return _user_or_404(services, user_id)


def _edge(services: Any, user_id: str, creator_id: str) -> None:
    if user_id == creator_id:
        raise ApiError(422, "invalid_edge", "a user cannot follow or block themselves")
    missing = {user_id, creator_id} - services.store.existing_user_ids({user_id, creator_id})
    if missing:
        raise ApiError(404, "not_found", f"no user {sorted(missing)[0]!r}")


@router.get("/{user_id}/following", summary="Creators a user follows")
def get_following(user_id: str, services: ServicesDep, _: AppKey) -> dict[str, list[str]]:
    _user_or_404(services, user_id)
    return {"following": services.store.following(user_id)}


@router.put("/{user_id}/following/{creator_id}", summary="Follow a creator", status_code=204)
def put_following(user_id: str, creator_id: str, services: ServicesDep, _: AdminKey) -> None:
    _edge(services, user_id, creator_id)
    services.store.set_follow(user_id, creator_id, True, now_ms())


@router.delete("/{user_id}/following/{creator_id}", summary="Unfollow a creator", status_code=204)
def delete_following(user_id: str, creator_id: str, services: ServicesDep, _: AdminKey) -> None:
    _edge(services, user_id, creator_id)
    services.store.set_follow(user_id, creator_id, False, now_ms())


@router.get("/{user_id}/blocks", summary="Creators a user blocked")
def get_blocks(user_id: str, services: ServicesDep, _: AppKey) -> dict[str, list[str]]:
    _user_or_404(services, user_id)
    return {"blocked": services.store.blocked(user_id)}


@router.put("/{user_id}/blocks/{creator_id}", summary="Block a creator", status_code=204)
def put_block(user_id: str, creator_id: str, services: ServicesDep, _: AdminKey) -> None:
    _edge(services, user_id, creator_id)
    services.store.set_block(user_id, creator_id, True, now_ms())


@router.delete("/{user_id}/blocks/{creator_id}", summary="Unblock a creator", status_code=204)
def delete_block(user_id: str, creator_id: str, services: ServicesDep, _: AdminKey) -> None:
    _edge(services, user_id, creator_id)
    services.store.set_block(user_id, creator_id, False, now_ms())
