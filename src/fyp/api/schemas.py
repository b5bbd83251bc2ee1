"""Response bodies and the documented shape of requests the API validates item by item."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field

from fyp.api.errors import ApiError
from fyp.models import Rejection, Scope
from fyp.types import Text


class RejectionOut(BaseModel):
    index: int
    id: str | None
    reason: str


class IngestResponse(BaseModel):
    received: int
    stored: int
    duplicates: int
    rejected: list[RejectionOut]


class BulkResponse(BaseModel):
    received: int
    stored: int
    rejected: list[RejectionOut]


class KeyCreate(BaseModel):
    scope: Scope
    name: Text = Field(default="", max_length=200)


def rejections(items: list[Rejection]) -> list[dict[str, Any]]:
    return [{"index": r.index, "id": r.id, "reason": r.reason} for r in items]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` inlined, for ``openapi_extra`` request bodies."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(model)}},
        }
    }


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {e}") from e


def body_items(body: bytes, key: str) -> list[Any]:
    """The list under ``key`` of a JSON object body, checked for shape only."""
    payload = parse_json(body)
    items = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise ApiError(422, "invalid_batch", f'the body must be {{"{key}": [...]}}')
    return items
