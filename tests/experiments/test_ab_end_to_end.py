"""The lab end to end: the simulated audience uses the real app (feed, events, served log,
assignment) over HTTP, and the results endpoint must tell a known-bad arm from a harmless one.

Two experiments run at once in different layers (orthogonal): an A/A test and an A/B test whose
B arm ranks by random scores. Request ids are drawn from a seeded generator and users are
simulated one at a time, so a run is reproducible: under the null hypothesis 5% of seeds would
show a false positive on the A/A's primary metric, and pinning the seed keeps this test from being
that 5% by chance, while any systematic bias (assignment, attribution, aggregation) would push
the A/A's p-value towards zero whatever the seed.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import httpx
import pytest

from fyp.api.app import build_services, create_app
from fyp.auth import create_key
from fyp.config import Settings
from fyp.simulator import SimConfig, Simulation, generate, population
from fyp.storage.data import open_data_store

SEED = 1
USERS = 150


def experiment(name: str, layer: str, b_overrides: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "hypothesis": "see the module docstring",
        "layer": layer,
        "primary_metric": "watch_ms_per_user",
        "guardrails": ["skip_rate"],
        "arms": [{"name": "a"}, {"name": "b", "overrides": b_overrides}],
    }


@pytest.fixture
def seeded_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(SEED)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=rng.getrandbits(128), version=4))


def test_aa_is_quiet_and_random_ranking_is_caught(settings: Settings, seeded_ids: None) -> None:
    settings.experiments.min_users_per_arm = 30
    # Timing must not decide which stages run: the run stays reproducible on a busy machine.
    settings.feed.stage_budget_ms = 60_000
    store = open_data_store("memory://")
    services = build_services(settings, store)
    _, admin = create_key(store, "admin", "lab")
    _, app_key = create_key(store, "app", "simulator")
    app = create_app(settings, services)
    catalog = generate(videos=600, creators=60, seed=SEED)
    sim = Simulation(
        catalog,
        population(catalog, USERS, seed=SEED),
        SimConfig(
            url="http://fyp",
            key=app_key,
            admin_key=admin,
            days=2,
            seed=SEED,
            concurrency=1,
            page_size=10,
            max_pages=8,
        ),
        transport=httpx.ASGITransport(app=app),
    )

    async def run() -> dict[str, Any]:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                base_url="http://fyp",
                transport=httpx.ASGITransport(app=app),
                headers={"Authorization": f"Bearer {admin}"},
            ) as http,
        ):
            await sim.setup()
            for spec in (
                experiment("aa", "holdout", {}),
                experiment("random-ranking", "ranking", {"random_scores": True}),
            ):
                assert (await http.post("/v1/experiments", json=spec)).status_code == 201
                assert (await http.post(f"/v1/experiments/{spec['name']}/start")).is_success
            days = await sim.run()
            assert all(d.errors == 0 for d in days), [d.error_examples for d in days]
            out = {}
            for name in ("aa", "random-ranking"):
                r = await http.get(f"/v1/experiments/{name}/results")
                assert r.status_code == 200, r.text
                out[name] = r.json()
            return out

    results = asyncio.run(run())

    # Every served row carries both experiments (they cover all traffic in their layers).
    served = [row for _, row in store.read_served(0, 100_000)]
    assert served and all(set(row.arms) == {"aa", "random-ranking"} for row in served)

    for res in results.values():
        assert res["status"] == "ok"
        assert not res["srm"]["mismatch"], res["srm"]
        assert sum(a["users"] for a in res["arms"]) == USERS  # everyone opened the app on day 0

    aa = {m["name"]: m["comparisons"][0] for m in results["aa"]["metrics"]}
    assert aa["watch_ms_per_user"]["status"] == "ok"
    assert not aa["watch_ms_per_user"]["significant"], aa["watch_ms_per_user"]
    # No metric of an A/A may look like a real effect (a bias would show up far below 0.001).
    assert all(c["p_value"] > 0.001 for c in aa.values()), {k: c["p_value"] for k, c in aa.items()}

    ab = {m["name"]: m["comparisons"][0] for m in results["random-ranking"]["metrics"]}
    watch = ab["watch_ms_per_user"]
    assert watch["significant"] and watch["ci_high"] < 0, watch
    assert watch["rel_lift"] < -0.15
    assert ab["skip_rate"]["significant"] and ab["skip_rate"]["diff"] > 0
