"""A tiny stand-in for the fyp API (feed contract §1, events, bulk users and videos) so the
simulator can be tested without the real feed. ``learning=True`` ranks by what each user's past
plays say about hashtags; ``learning=False`` serves in random order."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class FakeState:
    videos: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    served: dict[str, str] = field(default_factory=dict)  # request_id -> user_id
    seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    taste: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    auth: list[str] = field(default_factory=list)


def fake_app(state: FakeState, *, learning: bool, seed: int = 0) -> FastAPI:
    app = FastAPI()
    rng = random.Random(seed)

    @app.post("/v1/users")
    async def users(request: Request) -> dict[str, int]:
        body = await request.json()
        for u in body["users"]:
            state.users[u["id"]] = u
        return {"received": len(body["users"]), "stored": len(body["users"])}

    @app.post("/v1/videos")
    async def videos(request: Request) -> dict[str, int]:
        body = await request.json()
        for v in body["videos"]:
            state.videos[v["id"]] = v
        return {"received": len(body["videos"]), "stored": len(body["videos"])}

    @app.get("/v1/users/{user_id}/feed", response_model=None)
    def feed(user_id: str, request: Request, count: int = 10) -> Any:
        state.auth.append(request.headers.get("authorization", ""))
        if user_id not in state.users:
            return JSONResponse({"error": {"code": "not_found", "message": "no user"}}, 404)
        pool = [v for v in state.videos.values() if v["id"] not in state.seen[user_id]]
        taste = state.taste[user_id]
        if learning:
            pool.sort(key=lambda v: -sum(taste[t] for t in v["hashtags"]) - rng.random())
        else:
            rng.shuffle(pool)
        picked = pool[:count]
        rid = f"r_{uuid.uuid4().hex}"
        state.served[rid] = user_id
        state.seen[user_id].update(v["id"] for v in picked)
        return {
            "request_id": rid,
            "user_id": user_id,
            "items": [
                {"position": i, "video": v, "reasons": {"source": "fake"}}
                for i, v in enumerate(picked)
            ],
            "cursor": None if len(picked) < count else rid,
            "exhausted": len(picked) < count,
            "fallback": None,
            "arms": {},
        }

    @app.post("/v1/events")
    async def events(request: Request) -> dict[str, Any]:
        body = await request.json()
        for e in body["events"]:
            state.events.append(e)
            if e["type"] == "play":
                v = state.videos.get(e["video_id"])
                dur = (v or {}).get("duration_ms") or 20_000
                if v and e["watch_ms"] / dur >= 0.8:
                    state.taste[e["user_id"]].update(v["hashtags"])
        n = len(body["events"])
        return {"received": n, "stored": n, "duplicates": 0, "rejected": []}

    return app
