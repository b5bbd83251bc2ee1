"""The interpreter a process runs on, and the one build detail of it that moves a feed's speed.

CPython built with ``--enable-shared`` (pyenv's and many hand-made builds) runs from a small
executable that loads the interpreter from ``libpython3.X.so``; built without PGO and LTO, its
calls into its own exported functions then go through the library's symbol table and are not
inlined (the likely reason, not measured apart), and nothing in a feed request escapes that
(dict look-ups, attribute reads, the event loop). Debian's ``python3.11``, whose executable has
the interpreter linked in, took 16% less CPU a million-video feed in-process on an otherwise
idle core, 2-4% less with both cores busy, and served 9-12% more feeds a second side by side
(docs/benchmarks.md). ``fyp serve`` says which kind it runs on; ``make`` builds ``.venv`` on
such an interpreter when it finds one (``scripts/pick_python.py``).

Run as a script by any Python (this module imports nothing from fyp), it prints its probe of
that interpreter as one JSON object, which is how ``scripts/pick_python.py`` asks each
candidate.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import platform
import sys
import sysconfig


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def interpreter_file() -> str | None:
    """The file the running interpreter's code is in (the one defining ``Py_Initialize``): the
    executable itself, or the shared libpython it loaded. None where ``dladdr`` is missing."""
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except (AttributeError, OSError):
        return None
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    info = _DlInfo()
    address = ctypes.cast(ctypes.pythonapi.Py_Initialize, ctypes.c_void_p).value
    if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.fsdecode(info.dli_fname)


def libpython_shared() -> bool | None:
    """Whether the interpreter runs from a shared libpython (None: unknown)."""
    path = interpreter_file()
    return None if path is None else os.path.basename(path).startswith("libpython")


def probe() -> dict[str, object]:
    """What ``scripts/pick_python.py`` weighs: version, linkage, whether it can make a
    virtualenv with pip (Debian ships ``ensurepip`` apart, in ``python3.X-venv``) and whether
    its C headers are there (``fyp compile`` needs them)."""
    include = sysconfig.get_paths().get("include", "")
    return {
        "executable": sys.executable,
        # a virtualenv's python stands for the interpreter it was made from
        "base_executable": getattr(sys, "_base_executable", sys.executable),
        "implementation": platform.python_implementation(),
        "version": platform.python_version(),
        "libpython_shared": libpython_shared(),
        "venv": importlib.util.find_spec("ensurepip") is not None,
        "headers": bool(include) and os.path.isfile(os.path.join(include, "Python.h")),
    }


def describe(found: dict[str, object] | None = None) -> str:
    """One line for logs and benchmark reports, e.g. ``CPython 3.11.2, libpython linked in``."""
    p = found if found is not None else probe()
    shared = p["libpython_shared"]
    how = {
        True: "libpython as a shared library",
        False: "libpython linked in",
        None: "libpython's linkage unknown",
    }[shared if isinstance(shared, bool) else None]
    return f"{p['implementation']} {p['version']}, {how}"


if __name__ == "__main__":
    sys.stdout.write(json.dumps(probe()) + "\n")
