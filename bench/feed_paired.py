"""A code change's effect on a feed's CPU, in one process, user by user: each random user is
fed by the old and the new version back to back (the order alternating), so the host's drift
and the mix of users hit both alike. Resolves about one percent (its A/A: blocks 0.986-1.010)
where two servers side by side (``bench/feed_ab.py``) resolve about four.

    .venv/bin/python bench/feed_paired.py --base REV --swap fyp.events.online:OnlineUpdater._replay
        [--swap MODULE:ATTR ...] [--world DIR] [--blocks 8] [--per 300] [--check 80]

Each ``--swap`` names a function or method of the working tree; its old version is taken
from the same module as it was at ``--base`` (``git show``, loaded as a module of its own) and
swapped in for the old runs; ``MODULE:ATTR=SOURCE`` takes it from module ``SOURCE`` instead,
for a name imported from elsewhere (``--swap fyp.pipeline.service:run_pipeline=
fyp.pipeline.runner``: the service calls the runner's function by the name it imported). A
swapped old function calls the old module's own functions, but the working tree's versions of
whatever that module imports, so swap every changed piece it reaches that way.

Each feed forgets the user's online state first (a cold user rebuilt from the log, as in
``bench/feed.py``), calls the feed service directly (no HTTP) and runs its side effects;
CPU is this thread's (``time.thread_time``). First, the same ``--check`` users' pages are
built by both versions from one fixed query (request id and clock), and the number of
identical pages (ids and scores) is printed: a change meant to be pure speed should keep all.
Then ``--blocks`` blocks of ``--per`` pairs, each block's new/old ratio, and the pooled ratio.
With no ``--swap`` it runs an A/A (the same code both ways), the tool's own noise.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from feed import in_process_app, trained_world
from fyp.simulator.world import ids

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Swap:
    owner: Any
    name: str
    new: Any
    old: Any


def _resolve(obj: Any, path: str) -> tuple[Any, str]:
    *parents, name = path.split(".")
    for p in parents:
        obj = getattr(obj, p)
    return obj, name


def _own(owner: Any, name: str) -> Any:
    """The attribute as stored (a method's function, not a bound method)."""
    return vars(owner)[name] if name in vars(owner) else getattr(owner, name)


def old_module(rev: str, module: str) -> ModuleType:
    """``module`` as it was at ``rev``, loaded (once) under a name of its own."""
    name = f"{module}@{rev}"
    if name in sys.modules:
        return sys.modules[name]
    path = "src/" + module.replace(".", "/") + ".py"
    text = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    mod = ModuleType(name)
    mod.__file__ = f"{rev}:{path}"
    sys.modules[name] = mod  # dataclasses look their module up while the body runs
    exec(compile(text, mod.__file__, "exec"), mod.__dict__)
    return mod


def swaps_of(rev: str, specs: list[str]) -> list[Swap]:
    out = []
    for spec in specs:
        target, _, source = spec.partition("=")
        module, _, attr = target.partition(":")
        live = importlib.import_module(module)
        owner, name = _resolve(live, attr)
        old_owner, _ = _resolve(old_module(rev, source or module), attr)
        out.append(Swap(owner, name, _own(owner, name), _own(old_owner, name)))
    return out


async def run(args: argparse.Namespace) -> None:
    folder, meta = trained_world(args.world)
    swaps = swaps_of(args.base, args.swap) if args.swap else []

    def use(which: str) -> None:
        for s in swaps:
            setattr(s.owner, s.name, s.new if which == "new" else s.old)

    app = in_process_app(folder)
    users = ids("u", meta["spec"]["users"])
    async with app.router.lifespan_context(app):
        services = app.state.services
        service, online = services.feed, services.online
        rng = random.Random(args.seed)

        async def feed(user: str) -> None:
            online.forget_user(user)
            response = await service.feed(user, 10, None)
            response.after()

        for _ in range(100):  # warm-up
            await feed(users[rng.randrange(len(users))])

        # -- the same query, both versions: identical pages? --
        from fyp.pipeline import service as service_module

        now = service.clock()
        clocks = service.clock, service.updater.clock
        service.clock = service.updater.clock = lambda: now
        picked = [users[rng.randrange(len(users))] for _ in range(args.check)]
        pages: dict[str, list[list[tuple[str, float]]]] = {}
        for which in ("old", "new"):
            use(which)
            pages[which] = []
            for user in picked:
                online.forget_user(user)
                q = dataclasses.replace(service.build_query(user, 10, None), request_id="r_check")
                run_pipeline = vars(service_module)["run_pipeline"]  # as swapped
                result = await run_pipeline(service.pipeline, q, q.count)
                pages[which].append([(c.video_id, round(c.score, 9)) for c in result.selected])
        service.clock, service.updater.clock = clocks
        same = sum(a == b for a, b in zip(pages["old"], pages["new"], strict=True))
        print(f"{same} of {len(picked)} pages identical given the same query")

        # -- paired blocks --
        total = {"old": 0.0, "new": 0.0}
        ratios = []
        for b in range(args.blocks):
            cpu = {"old": 0.0, "new": 0.0}
            for i in range(args.per):
                user = users[rng.randrange(len(users))]
                for which in ("old", "new") if i % 2 == 0 else ("new", "old"):
                    use(which)
                    t = time.thread_time()
                    await feed(user)
                    cpu[which] += time.thread_time() - t
            ratios.append(cpu["new"] / cpu["old"])
            for k in total:
                total[k] += cpu[k]
            print(
                f"block {b + 1}: old {cpu['old'] / args.per * 1000:.2f}, new "
                f"{cpu['new'] / args.per * 1000:.2f} ms of CPU a feed, new/old {ratios[-1]:.3f}",
                flush=True,
            )
        use("new")
        print(
            f"new/old over {args.blocks} blocks of {args.per} users: pooled "
            f"{total['new'] / total['old']:.3f}, median {statistics.median(ratios):.3f} "
            f"(min {min(ratios):.3f}, max {max(ratios):.3f}); "
            f"{sum(r < 1 for r in ratios)} of {len(ratios)} below 1"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", default="HEAD", help="the old version's git revision")
    p.add_argument(
        "--swap",
        action="append",
        default=[],
        help="MODULE:ATTR[=SOURCE_MODULE] to take from --base for the old runs",
    )
    p.add_argument("--world", type=Path, default=None, help="default: the newest trained world")
    p.add_argument("--blocks", type=int, default=8)
    p.add_argument("--per", type=int, default=300, help="users a block, each fed twice")
    p.add_argument("--check", type=int, default=80, help="users whose pages are compared")
    p.add_argument("--seed", type=int, default=7)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
