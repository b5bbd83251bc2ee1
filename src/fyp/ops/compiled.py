"""The feed's hot modules compiled to C with mypyc, for ``fyp serve``.

A feed request is a few tens of thousands of small Python operations over its candidates
(sources, merge, hydrators, filters, scorers, selector); compiled by mypyc from the same typed
source, the same work costs 11-19% less CPU (docs/benchmarks.md). ``fyp compile`` builds a
copy of the whole package under ``<var_dir>/compiled/<digest>/`` with the modules of
``HOT_MODULES`` compiled next to their sources; ``fyp serve`` runs from that copy
(``fyp.__main__`` puts it first on ``PYTHONPATH`` before the interpreter imports the package)
when ``server.compiled`` is on and the copy was built from exactly the sources installed now.
The digest covers every ``.py`` file of the package, so an edited source never runs stale
compiled code: a build for other sources is ignored and the server runs the plain modules.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import fyp

# The modules a feed request spends its Python time in (package-relative paths).
HOT_MODULES = (
    "pipeline/runner.py",
    "pipeline/candidate.py",
    "pipeline/catalog_index.py",
    "pipeline/service.py",
    "events/online.py",
    "storage/cache/memory.py",
    "hydrators/catalog_hydrator.py",
    "hydrators/features_hydrator.py",
    "sources/affinity_source.py",
    "sources/backfill_source.py",
    "sources/content_source.py",
    "sources/embedding_source.py",
    "sources/following_source.py",
    "sources/fresh_source.py",
    "sources/item_neighbours_source.py",
    "sources/trending_source.py",
    "filters/blocked_creator_filter.py",
    "filters/moderation_filter.py",
    "filters/negative_feedback_filter.py",
    "filters/preference_filter.py",
    "filters/previously_served_filter.py",
    "scorers/action_scorer.py",
    "scorers/blend_scorer.py",
    "scorers/feedback_scorer.py",
    "scorers/freshness_scorer.py",
    "selectors/slate_diversity_selector.py",
    "selectors/top_k_score_selector.py",
)
_DONE = "BUILT"  # written last: a folder without it is an interrupted build
KEEP_BUILDS = 3


def package_dir() -> Path:
    """The ``fyp`` package this process imported (the sources, or a compiled copy of them)."""
    return Path(fyp.__file__).resolve().parent


def source_digest(package: Path | None = None) -> str:
    """A digest of every ``.py`` file of the package (paths and contents)."""
    root = package or package_dir()
    h = hashlib.sha256(f"{sys.implementation.cache_tag}\n".encode())
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_dir(var_dir: Path, package: Path | None = None) -> Path:
    """Where the build for the installed sources lives (whether or not it exists)."""
    return Path(var_dir).resolve() / "compiled" / source_digest(package)


def fresh_build(var_dir: Path, package: Path | None = None) -> Path | None:
    """The complete build for the installed sources, if there is one."""
    out = build_dir(var_dir, package)
    return out if (out / _DONE).is_file() else None


def running_compiled() -> bool:
    """Whether this process runs the compiled modules (for logs and the health page)."""
    from fyp.pipeline import runner

    return not str(runner.__file__).endswith(".py")


def build(
    var_dir: Path,
    package: Path | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Path:
    """Build (or find) the compiled copy for the installed sources and return its folder.

    The copy is built in a temporary folder next to its final place and renamed into place
    complete; older builds are removed. Needs a C compiler and the Python headers; raises
    ``RuntimeError`` with mypyc's output when the build fails."""
    src = package or package_dir()
    have = fresh_build(var_dir, src)
    if have is not None:
        say(f"up to date: {have}")
        return have
    out = build_dir(var_dir, src)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=out.parent))
    try:
        shutil.copytree(src, work / "fyp", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        say(f"compiling {len(HOT_MODULES)} modules with mypyc (about a minute on 2 cores) ...")
        modules = [f"fyp/{m}" for m in HOT_MODULES]
        env = {**os.environ, "MYPY_CACHE_DIR": str(work / ".mypy_cache")}
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", *modules],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"mypyc failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        shutil.rmtree(work / "build", ignore_errors=True)
        shutil.rmtree(work / ".mypy_cache", ignore_errors=True)
        (work / _DONE).write_text(source_digest(src) + "\n")
        if out.exists():  # a concurrent build finished first
            shutil.rmtree(work)
        else:
            work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    # Keep the newest few: a server started from an older build may still import from it.
    builds = sorted(
        (p for p in out.parent.iterdir() if p != out and not p.name.startswith(".build-")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in builds[KEEP_BUILDS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
    say(f"built: {out}")
    return out


def pythonpath_with(build: Path, environ: dict[str, str]) -> dict[str, str] | None:
    """``environ`` with ``build`` first on ``PYTHONPATH``, or None when it is there already."""
    current = environ.get("PYTHONPATH", "")
    parts = [p for p in current.split(os.pathsep) if p]
    if parts and Path(parts[0]).resolve() == build.resolve():
        return None
    return {**environ, "PYTHONPATH": os.pathsep.join([str(build), *parts])}
