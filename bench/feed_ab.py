"""Feed throughput of two versions of fyp served side by side, as a ratio: the working tree
against ``--base`` (a git revision), on the world ``bench/feed.py`` built.

On these shared machines the host's speed drifts by 10-20% within minutes, so two versions
measured one after the other differ by more than most changes do. Here both run at the same
time instead: one ``fyp serve`` worker each (so each has about one core), driven by the same
number of keep-alive clients (``--clients`` each) with random users, in rounds of ``--seconds``.
Whatever slows the host slows both; each round prints both rates and new/base, and the summary
is the median ratio. Each version runs from its own source tree (the base from a temporary git
worktree, via PYTHONPATH) with the same virtualenv, so a change of dependencies is not measured.

    .venv/bin/python bench/feed_ab.py --base HEAD~1 [--world DIR] [--clients 8] [--seconds 20]
        [--rounds 5] [--warmup 5] [--base-env FYP_X=VALUE ...] [--new-env FYP_X=VALUE ...]
        [--base-python PATH] [--new-python PATH]

``--base-env`` and ``--new-env`` give one arm a setting of its own: with ``--base HEAD`` on a
clean tree and ``--base-env FYP_TRAINING__MODELS_DIR=<a folder holding an older version and an
ACTIVE file naming it>``, the same code serves two model versions. ``--base-python`` and
``--new-python`` run one arm's server on another interpreter (the python of another virtualenv
with the same dependencies): with ``--base HEAD`` on a clean tree, the same code on two
interpreter builds.

The served log is emptied first (both servers write to it, as their requests interleave).
Each version serves its own compiled modules when the world's ``var`` holds a ``fyp compile``
build of its sources (``FYP_VAR_DIR=<world>/var fyp compile``; for the base, run it with
``PYTHONPATH`` set to a checkout of that revision's ``src``), else plain: each arm's start-up
notice is printed, so a ratio that compares a compiled build with a plain one says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from feed import (
    FEED_ROUTE,
    PAGE,
    Connection,
    clear_served,
    db_url,
    trained_world,
    warm_page_cache,
)
from fyp.simulator.world import ids
from load import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Arm:
    name: str
    src: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)  # settings of this arm only
    python: str = sys.executable  # the interpreter this arm's server runs on
    proc: subprocess.Popen[bytes] | None = None


def env_of(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("FYP_"):
            raise SystemExit(f"expected FYP_NAME=VALUE, got {pair!r}")
        out[key] = value
    return out


def module_of(src: Path) -> str:
    """``fyp`` (the launcher that sets up the process first) where the tree has it."""
    return "fyp" if (src / "fyp" / "__main__.py").exists() else "fyp.cli"


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fyp-ab-") as tmp:
        path = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
            check=True,
            capture_output=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                check=False,
                capture_output=True,
            )


def start(arm: Arm, world: Path, log_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FYP_")}
    env.pop("GLIBC_TUNABLES", None)  # each version sets up its own process
    env |= {
        "PYTHONPATH": str(arm.src),
        "FYP_DATABASE_URL": db_url(world),
        "FYP_VAR_DIR": str(world / "var"),
        "FYP_SERVER__LOG_LEVEL": "WARNING",
    } | arm.env
    cmd = [arm.python, "-m", module_of(arm.src), "serve", "--host", "127.0.0.1"]
    cmd += ["--port", str(arm.port), "--workers", "1", "--no-access-log"]
    with (log_dir / f"{arm.name}.log").open("wb") as log:  # the child keeps its own copy
        arm.proc = subprocess.Popen(cmd, env=env, cwd=log_dir, stdout=log, stderr=subprocess.STDOUT)


def modules_line(log: Path) -> str:
    """What the server said it runs on (``fyp serve``'s start-up notices: the interpreter, and
    compiled or plain modules): a version without a ``fyp compile`` build of its own sources
    runs plain, and the ratio then measures the build as well as the change."""
    lines = log.read_text(errors="replace").splitlines()
    said = [line.strip() for line in lines if "feed modules:" in line or "interpreter:" in line]
    return "; ".join(said[-2:]) if said else "no notice of compiled or plain modules"


def wait_ready(arm: Arm, timeout_s: float, log_dir: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert arm.proc is not None
        if arm.proc.poll() is not None:
            raise RuntimeError(f"{arm.name}: {(log_dir / f'{arm.name}.log').read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{arm.port}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{arm.name} not ready in {timeout_s:.0f} s")


async def drive(
    arm: Arm, key: str, users: list[str], clients: int, seconds: float, rng: random.Random
) -> tuple[int, int]:
    """Feeds answered 200 and others in ``seconds`` from ``clients`` keep-alive clients."""
    ok = bad = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal ok, bad
        conn = Connection(f"http://127.0.0.1:{arm.port}", {"authorization": f"Bearer {key}"})
        try:
            while time.perf_counter() < stop:
                user = users[rng.randrange(len(users))]
                status, _ = await conn.get(FEED_ROUTE.format(user_id=user) + f"?count={PAGE}")
                ok, bad = (ok + 1, bad) if status == 200 else (ok, bad + 1)
        finally:
            await conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return ok, bad


async def rounds(arms: list[Arm], key: str, users: list[str], args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    await asyncio.gather(*(drive(a, key, users, args.clients, args.warmup, rng) for a in arms))
    ratios: list[float] = []
    for r in range(args.rounds):
        t = time.perf_counter()
        got = await asyncio.gather(
            *(drive(a, key, users, args.clients, args.seconds, rng) for a in arms)
        )
        wall = time.perf_counter() - t
        rate = {a.name: ok / wall for a, (ok, _) in zip(arms, got, strict=True)}
        ratios.append(rate["new"] / rate["base"])
        print(
            f"round {r + 1} ({time.strftime('%H:%M:%S')}): base {rate['base']:.1f} feeds/s, "
            f"new {rate['new']:.1f} feeds/s, new/base {ratios[-1]:.3f}, "
            f"non-200 {[bad for _, bad in got]}",
            flush=True,
        )
    print(
        f"new/base over {len(ratios)} rounds: median {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--base", required=True, help="git revision to compare the working tree with")
    p.add_argument("--world", type=Path, help="default: bench/feed.py's default world")
    p.add_argument("--clients", type=int, default=8, help="keep-alive clients per server")
    p.add_argument("--seconds", type=float, default=20.0, help="length of a round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=float, default=5.0, help="seconds discarded first")
    p.add_argument("--ready-timeout", type=float, default=180.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--base-env",
        action="append",
        default=[],
        metavar="FYP_X=VALUE",
        help="a setting for the base's server only (repeatable), e.g. an older model version's "
        "folder as FYP_TRAINING__MODELS_DIR, to compare one version of the code on two",
    )
    p.add_argument("--new-env", action="append", default=[], metavar="FYP_X=VALUE")
    p.add_argument(
        "--base-python",
        default=sys.executable,
        metavar="PATH",
        help="the interpreter of the base's server (default: this one), e.g. another "
        "virtualenv's python with the same dependencies, to compare interpreter builds",
    )
    p.add_argument("--new-python", default=sys.executable, metavar="PATH")
    args = p.parse_args()
    world, meta = trained_world(args.world)
    users = ids("u", meta["spec"]["users"])
    clear_served(world)
    warm_page_cache(world)
    with worktree(args.base) as base, tempfile.TemporaryDirectory(prefix="fyp-ab-logs-") as logs:
        log_dir = Path(logs)
        arms = [
            Arm("base", base / "src", free_port(), env_of(args.base_env), args.base_python),
            Arm("new", ROOT / "src", free_port(), env_of(args.new_env), args.new_python),
        ]
        print(
            f"base {args.base} ({module_of(arms[0].src)}) against the working tree "
            f"({module_of(arms[1].src)}), {args.clients} clients each, world {world.name}"
        )
        for arm in arms:
            if arm.env:
                print(f"{arm.name} settings: {' '.join(f'{k}={v}' for k, v in arm.env.items())}")
            if arm.python != sys.executable:
                print(f"{arm.name} interpreter: {arm.python}")
        try:
            for arm in arms:
                start(arm, world, log_dir)
            for arm in arms:
                wait_ready(arm, args.ready_timeout, log_dir)
                print(f"{arm.name}: {modules_line(log_dir / f'{arm.name}.log')}")
            asyncio.run(rounds(arms, meta["key"], users, args))
        finally:
            for arm in arms:
                if arm.proc is not None and arm.proc.poll() is None:
                    arm.proc.terminate()
            for arm in arms:
                if arm.proc is not None:
                    try:
                        arm.proc.wait(30)
                    except subprocess.TimeoutExpired:
                        arm.proc.kill()


if __name__ == "__main__":
    main()
