"""What a trained ranker adds to a feed. ``bench/feed.py``'s world has no served outcomes, so
``fyp train`` trains no ranker on it (``bench/feed.py`` attaches one of its own, trained the
same way as here); a deployment with traffic has one, and it scores every candidate kept after
the cap with one LightGBM model per action.

    .venv/bin/python bench/ranker_cost.py [--world DIR] [--train-users 1500] [--blocks 6]
        [--per 150] [--seed 11]

1. ``feed.fit_ranker``: feeds ``--train-users`` random cold users of the world (in this
   process, no HTTP, scored by the heuristic) and keeps every third scored candidate's
   features, the same ones the served log would hold.
   Each action's outcome is drawn from the heuristic's own probability for it, so the ranker
   learns a smooth function of the real features and its trees are as many as early stopping
   keeps (``fyp.training.ranker.train`` with the default settings).
2. Paired blocks: each random user is fed three times back to back, the order rotating (as
   ``bench/feed_paired.py``): without a ranker, with it as LightGBM serves it, and with its
   trees compiled (``training.native_ranker``, as a trained version serves them). CPU is this
   thread's.
3. The ActionScorer's stage time each way, and ``Ranker.predict`` alone for 300 rows.

Run it from the compiled build to match a server (``PYTHONPATH=<world>/var/compiled/<digest>``,
after ``FYP_VAR_DIR=<world>/var fyp compile``); it says which modules it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from feed import fit_ranker, in_process_app, trained_world
from fyp.ops.compiled import running_compiled
from fyp.pipeline.runner import run_pipeline
from fyp.simulator.world import ids
from fyp.training.ranker import Ranker


async def run(args: argparse.Namespace) -> None:
    folder, meta = trained_world(args.world)
    app = in_process_app(folder)
    users = ids("u", meta["spec"]["users"])
    async with app.router.lifespan_context(app):
        services = app.state.services
        service, online = services.feed, services.online
        models = service.clients.models.current()
        if models is None:
            raise SystemExit(f"no active models in {folder}")
        own = models.ranker
        print(
            f"{'compiled' if running_compiled() else 'plain'} modules; the world's own ranker: "
            f"{'none' if own is None else own.actions}"
        )
        rng = random.Random(args.seed + 1)  # other users than fit_ranker's
        if own is not None:
            print("(the world's own ranker is set aside: this one is trained here)")
        t = time.perf_counter()
        models.ranker = None  # the rows' outcomes are drawn from the heuristic's probabilities
        ranker, data = await fit_ranker(service, online, users, args.train_users, args.seed)
        names = data.feature_names
        x = data.x
        trees = {a: b.num_trees() for a, b in ranker.boosters.items()}
        print(
            f"ranker: {data.rows:,} rows x {len(names)} features, {time.perf_counter() - t:.0f} s; "
            f"trees per action {trees} ({sum(trees.values())} in all)"
        )

        with tempfile.TemporaryDirectory() as tmp:  # the served form: compiled with its version
            ranker.build_native = True
            ranker.save(Path(tmp) / "ranker")
            native = Ranker.load(Path(tmp) / "ranker")
        if native.native is None:
            raise SystemExit("the ranker's trees could not be compiled (see the log above)")
        arms = {"none": None, "lightgbm": ranker, "native": native}

        def use(which: str) -> None:
            models.ranker = arms[which]

        async def feed(user: str) -> None:
            online.forget_user(user)
            response = await service.feed(user, 10, None)
            response.after()

        # -- paired blocks: each user fed by all three, the order rotating --
        names = list(arms)
        total = dict.fromkeys(names, 0.0)
        ratios: dict[str, list[float]] = {"lightgbm": [], "native": []}
        for b in range(args.blocks):
            cpu = dict.fromkeys(names, 0.0)
            for i in range(args.per):
                user = users[rng.randrange(len(users))]
                for which in names[i % 3 :] + names[: i % 3]:
                    use(which)
                    t0 = time.thread_time()
                    await feed(user)
                    cpu[which] += time.thread_time() - t0
            for k in ratios:
                ratios[k].append(cpu[k] / cpu["none"])
            for k in total:
                total[k] += cpu[k]
            print(
                f"block {b + 1}: ms of CPU a feed without a ranker "
                f"{cpu['none'] / args.per * 1000:.2f}, LightGBM "
                f"{cpu['lightgbm'] / args.per * 1000:.2f}, compiled "
                f"{cpu['native'] / args.per * 1000:.2f}; over without "
                f"{ratios['lightgbm'][-1]:.3f} and {ratios['native'][-1]:.3f}",
                flush=True,
            )
        n = args.blocks * args.per
        print(
            f"over {args.blocks} blocks of {args.per} users, ms of CPU a feed: without a ranker "
            f"{total['none'] / n * 1000:.2f}, LightGBM {total['lightgbm'] / n * 1000:.2f}, "
            f"compiled {total['native'] / n * 1000:.2f}; over without, median: LightGBM "
            f"{statistics.median(ratios['lightgbm']):.3f} ({min(ratios['lightgbm']):.3f}-"
            f"{max(ratios['lightgbm']):.3f}), compiled {statistics.median(ratios['native']):.3f} "
            f"({min(ratios['native']):.3f}-{max(ratios['native']):.3f})"
        )

        # -- the scorer's share, and the models alone --
        stage: dict[str, list[float]] = defaultdict(list)
        for _ in range(args.per):
            user = users[rng.randrange(len(users))]
            for which in names:
                use(which)
                online.forget_user(user)
                query = service.build_query(user, 10, None)
                result = await run_pipeline(service.pipeline, query, query.count)
                stage[which].append(result.timings_ms.get("ActionScorer", float("nan")))
        print(
            "ActionScorer stage, wall ms a feed: "
            + ", ".join(f"{k} {statistics.mean(v):.3f}" for k, v in stage.items())
        )
        batch = x[:300]
        for _ in range(3):
            took = {}
            for which in ("lightgbm", "native"):
                t0 = time.thread_time()
                for _ in range(100):
                    arms[which].predict(batch)  # type: ignore[union-attr]
                took[which] = (time.thread_time() - t0) * 10
            print(
                f"Ranker.predict, {len(batch)} rows, {len(trees)} actions: LightGBM "
                f"{took['lightgbm']:.3f} ms, compiled {took['native']:.3f} ms"
            )
        models.ranker = own


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--world", type=Path, default=None, help="default: the default world")
    p.add_argument("--train-users", type=int, default=1500, help="cold users fed for the rows")
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--per", type=int, default=150, help="users a block, each fed three times")
    p.add_argument("--seed", type=int, default=11)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
