"""The interpreter ``make`` builds ``.venv`` on, printed as a path.

Of the CPython 3.11 interpreters on ``PATH`` (every ``python3.11`` and ``python3`` in it) that
can make a virtualenv with pip, the first, in this order of preference: one with its C headers
(``fyp compile`` needs them; compiled, a feed costs 11-19% less CPU), then one with libpython
linked in rather than loaded as a shared library (2-16% less CPU a feed, by how busy the
machine is; see ``fyp.ops.interpreter``), then ``PATH`` order. Exits 1 when there is none
(``make`` then falls back to ``python3.11`` or ``python3`` and says why that one will not do).
``make PYTHON=...`` chooses by hand; ``--explain`` lists what was found on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).resolve().parent.parent / "src" / "fyp" / "ops" / "interpreter.py"
NAMES = ("python3.11", "python3")
VERSION = "3.11"


def on_path() -> list[str]:
    """Every executable named in ``NAMES`` in ``PATH``, in its order (names first to last),
    one per real file."""
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    out: dict[str, str] = {}  # by the real file (``/bin`` is often ``/usr/bin``)
    for name in NAMES:
        for d in dirs:
            exe = os.path.join(d, name)
            if d and os.path.isfile(exe) and os.access(exe, os.X_OK):
                out.setdefault(os.path.realpath(exe), exe)
    return list(out.values())


def ask(exe: str, timeout_s: float = 20.0) -> dict[str, object] | None:
    """The interpreter's own probe (``fyp.ops.interpreter`` run as a script), or None."""
    try:
        done = subprocess.run(
            [exe, str(PROBE)], capture_output=True, text=True, timeout=timeout_s, check=False
        )
        found = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def usable(p: dict[str, object]) -> bool:
    version = str(p.get("version", ""))
    return (
        p.get("implementation") == "CPython"
        and (version == VERSION or version.startswith(VERSION + "."))
        and p.get("venv") is True
    )


def pick(probes: list[dict[str, object]]) -> dict[str, object] | None:
    """The preferred usable interpreter (see the module's docstring), one per real file."""
    seen: set[str] = set()
    ranked: list[tuple[bool, bool, int, dict[str, object]]] = []
    for order, p in enumerate(probes):
        real = os.path.realpath(str(p.get("base_executable") or p.get("executable")))
        if real in seen or not usable(p):
            continue
        seen.add(real)
        ranked.append(
            (p.get("headers") is not True, p.get("libpython_shared") is not False, order, p)
        )
    return min(ranked, key=lambda r: r[:3])[3] if ranked else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--explain", action="store_true", help="list the candidates on stderr")
    args = ap.parse_args()
    probes = [p for exe in on_path() if (p := ask(exe)) is not None]
    best = pick(probes)
    if args.explain:
        for p in probes:
            mark = "*" if p is best else " "
            print(
                f"{mark} {p.get('base_executable')}: CPython {p.get('version')}, libpython "
                f"shared {p.get('libpython_shared')}, venv {p.get('venv')}, headers "
                f"{p.get('headers')}",
                file=sys.stderr,
            )
    if best is None:
        return 1
    print(best.get("base_executable") or best.get("executable"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
