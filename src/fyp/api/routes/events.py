from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from fyp.api.deps import AppKey, ServicesDep
from fyp.api.responses import JSON
from fyp.api.schemas import IngestResponse, json_body, parse_json, rejections
from fyp.models import EventIn
from fyp.ops import metrics

router = APIRouter(prefix="/v1", tags=["events"])


class EventBatch(BaseModel):
    events: list[EventIn] = Field(max_length=1000)


@router.post(
    "/events",
    summary="Record a batch of up to 1,000 events",
    description=(
        "Events are judged one by one: valid ones are stored durably (the answer comes after "
        "the commit), invalid ones come back in `rejected` with their index and reason. "
        "Re-sending an `event_id` stores nothing twice; it counts in `duplicates`. "
        "If no event is usable the status is 422."
    ),
    response_model=None,
    responses={200: {"model": IngestResponse}, 422: {"model": IngestResponse}},
    openapi_extra=json_body(EventBatch),
)
async def post_events(request: Request, services: ServicesDep, _: AppKey) -> JSON:
    # The body is parsed here, not by FastAPI, so one bad event cannot refuse the whole batch.
    payload = parse_json(await request.body())
    # -- scale -- at most N batches per worker at once (429), none waits past the timeout (503)
    result = await services.store_gate.ingest(services.ingestor.ingest, payload)
    metrics.record_ingest(result.stored, result.duplicates, len(result.rejected))
    status = 422 if result.rejected and not (result.stored or result.duplicates) else 200
    return JSON(
        {
            "received": result.received,
            "stored": result.stored,
            "duplicates": result.duplicates,
            "rejected": rejections(result.rejected),
        },
        status_code=status,
    )
