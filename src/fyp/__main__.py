"""The ``fyp`` command (and ``python -m fyp``): the command line of ``fyp.cli``, after the
process set-up that has to happen before the interpreter starts.

``fyp serve`` wants glibc's malloc to ask for transparent huge pages
(``ServerSettings.malloc_huge_pages``). glibc reads its tunables once, when a process starts,
so this re-executes the same command with ``GLIBC_TUNABLES`` extended, before the heavy imports
of ``fyp.cli``; the workers of ``fyp serve --workers N`` inherit the environment. The same
re-execution puts the compiled copy of the feed's hot modules first on ``PYTHONPATH`` when
``fyp compile`` has built one for the installed sources (``ServerSettings.compiled``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

HUGE_PAGES = "glibc.malloc.hugetlb=1"


def huge_pages_env(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``environ`` with glibc's huge-page tunable added, or None when it is set already (an
    operator's own value of it wins) or the platform has no glibc tunables."""
    if not sys.platform.startswith("linux"):
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb=" in tunables:
        return None
    return {**environ, "GLIBC_TUNABLES": f"{tunables}:{HUGE_PAGES}" if tunables else HUGE_PAGES}


def prepare(
    args: Sequence[str],
    environ: Mapping[str, str] = os.environ,
    execve: Callable[[str, list[str], Mapping[str, str]], object] = os.execve,
) -> None:
    """Re-execute ``fyp serve`` with huge pages asked for and with the compiled hot modules
    first on ``PYTHONPATH`` (``fyp.ops.compiled``), each when the settings want it and the
    environment does not have it yet (the re-executed process has both: no loop)."""
    if args[:1] != ["serve"] or "--help" in args or not sys.executable:
        return
    from fyp.config import Settings

    try:
        settings = Settings()
    except Exception:  # invalid settings: the command itself reports them
        return
    env: dict[str, str] | None = None
    if settings.server.malloc_huge_pages:
        env = huge_pages_env(environ)
    if settings.server.compiled:
        from fyp.ops import compiled

        build = compiled.fresh_build(settings.var_dir)
        if build is not None:
            env = compiled.pythonpath_with(build, dict(env or environ)) or env
    if env is not None:
        # sys.orig_argv keeps the interpreter's own options (-X, -m fyp.cli, the script path)
        execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def main() -> None:
    prepare(sys.argv[1:])
    from fyp.cli import app

    app()


if __name__ == "__main__":
    main()
