"""Catalog writes with per-item validation, shared by the API and the importers.

Bulk upserts judge each item on its own: valid items are stored, invalid ones are reported with
their index and reason, exactly like event batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from fyp.config import CatalogSettings
from fyp.models import BatchRefused, Rejection, User, VideoIn, describe
from fyp.storage.data import DataStore

_USER = TypeAdapter(User)
_VIDEO = TypeAdapter(VideoIn)


@dataclass(slots=True)
class BulkResult:
    received: int
    stored: int = 0
    rejected: list[Rejection] = field(default_factory=list)


def _item_id(item: Any) -> str | None:
    v = item.get("id") if isinstance(item, dict) else None
    return v if isinstance(v, str) else None


class Catalog:
    def __init__(self, store: DataStore, settings: CatalogSettings) -> None:
        self.store = store
        self.settings = settings

    def _check_size(self, items: Sequence[Any], what: str) -> None:
        if len(items) > self.settings.max_bulk:
            raise BatchRefused(
                413,
                "batch_too_large",
                f"a bulk upsert holds at most {self.settings.max_bulk} {what}; "
                f"this one has {len(items)}: split it",
            )

    def upsert_users(self, items: Sequence[Any]) -> BulkResult:
        self._check_size(items, "users")
        result = BulkResult(received=len(items))
        users: list[User] = []
        for i, item in enumerate(items):
            try:
                users.append(_USER.validate_python(item))
            except ValidationError as e:
                result.rejected.append(Rejection(i, _item_id(item), describe(e)))
        result.stored = self.store.upsert_users(users)
        return result

    def upsert_videos(self, items: Sequence[Any]) -> BulkResult:
        """Store videos whose creators are known users (creators are users: upsert them first)."""
        self._check_size(items, "videos")
        result = BulkResult(received=len(items))
        parsed: list[tuple[int, VideoIn]] = []
        for i, item in enumerate(items):
            try:
                parsed.append((i, _VIDEO.validate_python(item)))
            except ValidationError as e:
                result.rejected.append(Rejection(i, _item_id(item), describe(e)))
        known = self.store.existing_user_ids({v.creator_id for _, v in parsed})
        ok: list[VideoIn] = []
        for i, v in parsed:
            if v.creator_id in known:
                ok.append(v)
            else:
                reason = f"unknown creator {v.creator_id!r}: upsert the creator as a user first"
                result.rejected.append(Rejection(i, v.id, reason))
        result.stored = self.store.upsert_videos(ok, self.settings.default_moderation)
        result.rejected.sort(key=lambda r: r.index)
        return result
