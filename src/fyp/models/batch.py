"""What a batch request (events, bulk upserts) answers about the items it refused."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused item of a batch: its position, its id when it had one, and why."""

    index: int
    id: str | None
    reason: str


class BatchRefused(ValueError):
    """The request as a whole is unusable (not a list, too many items); nothing is stored."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def describe(error: ValidationError) -> str:
    """A one-line, human reason from a pydantic error: 'watch_ms: must be >= 0; ...'."""
    parts = []
    for e in error.errors(include_url=False):
        where = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
