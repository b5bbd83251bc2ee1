"""The interpreter probe (``fyp.ops.interpreter``) and the choice ``make`` builds ``.venv`` on
(``scripts/pick_python.py``)."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from fyp.ops import interpreter

ROOT = Path(__file__).resolve().parents[2]


def _pick_python() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pick_python", ROOT / "scripts/pick_python.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


pick_python = _pick_python()


def _mapped_libpython() -> bool:
    """The other way to tell: whether a libpython shared object is mapped into this process."""
    maps = Path("/proc/self/maps").read_text()
    return any(
        os.path.basename(line.split()[-1]).startswith("libpython")
        for line in maps.splitlines()
        if "/" in line
    )


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc (Linux)")
def test_linkage_agrees_with_the_process_maps() -> None:
    assert interpreter.libpython_shared() is _mapped_libpython()
    where = interpreter.interpreter_file()
    assert where is not None and Path(where).exists()


def test_the_module_run_as_a_script_probes_that_interpreter() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "src/fyp/ops/interpreter.py")],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    found = json.loads(done.stdout)
    assert found["version"] == platform.python_version()
    assert found["implementation"] == "CPython"
    assert found["executable"] == sys.executable
    assert found["libpython_shared"] is interpreter.libpython_shared()
    assert found["venv"] is True  # this suite runs in a virtualenv made by this interpreter
    assert interpreter.describe(found).startswith(f"CPython {platform.python_version()}, ")


def test_describe_names_the_linkage() -> None:
    base = {"implementation": "CPython", "version": "3.11.2"}
    assert interpreter.describe({**base, "libpython_shared": False}) == (
        "CPython 3.11.2, libpython linked in"
    )
    assert interpreter.describe({**base, "libpython_shared": True}) == (
        "CPython 3.11.2, libpython as a shared library"
    )
    assert "unknown" in interpreter.describe({**base, "libpython_shared": None})


def _probe(exe: str, **over: object) -> dict[str, object]:
    p: dict[str, object] = {
        "executable": exe,
        "base_executable": exe,
        "implementation": "CPython",
        "version": "3.11.7",
        "libpython_shared": True,
        "venv": True,
        "headers": True,
    }
    return {**p, **over}


def test_pick_prefers_headers_then_libpython_linked_in_then_path_order() -> None:
    shared = _probe("/a/python3.11")
    linked = _probe("/b/python3.11", version="3.11.2", libpython_shared=False)
    assert pick_python.pick([shared, linked]) is linked
    # without headers ``fyp compile`` cannot build, which costs more than the linkage gains
    bare = _probe("/c/python3.11", libpython_shared=False, headers=False)
    assert pick_python.pick([bare, shared]) is shared
    # otherwise equal: the first on PATH
    other = _probe("/d/python3.11")
    assert pick_python.pick([shared, other]) is shared
    assert pick_python.pick([other, shared]) is other


def test_pick_leaves_out_what_cannot_build_the_venv() -> None:
    assert pick_python.pick([]) is None
    assert (
        pick_python.pick([_probe("/a/python3", version="3.12.1", libpython_shared=False)]) is None
    )
    assert pick_python.pick([_probe("/a/python3", version="3.1.4")]) is None
    assert pick_python.pick([_probe("/a/pypy3", implementation="PyPy")]) is None
    # Debian without python3.11-venv: no ensurepip, so ``python -m venv`` fails
    no_venv = _probe("/a/python3.11", libpython_shared=False, venv=False)
    ok = _probe("/b/python3.11")
    assert pick_python.pick([no_venv, ok]) is ok


def test_pick_counts_a_virtualenv_as_the_interpreter_it_was_made_from() -> None:
    venv = _probe(
        "/x/.venv/bin/python3.11", base_executable="/usr/bin/python3.11", libpython_shared=False
    )
    real = _probe("/usr/bin/python3.11", libpython_shared=False)
    other = _probe("/opt/python3.11")
    got = pick_python.pick([other, venv, real])
    assert got is not None and got["base_executable"] == "/usr/bin/python3.11"


def _fake_python(folder: Path, name: str, probe: dict[str, object] | None) -> None:
    out = json.dumps(probe) if probe is not None else ""
    script = folder / name
    script.write_text(f"#!/bin/sh\necho '{out}'\n" + ("" if probe else "exit 3\n"))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_the_script_prints_the_chosen_path(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _fake_python(first, "python3.11", _probe("/opt/shared/python3.11"))
    _fake_python(first, "python3", None)  # a broken one is skipped
    _fake_python(second, "python3.11", _probe("/opt/linked/python3.11", libpython_shared=False))
    env = {**os.environ, "PATH": f"{first}{os.pathsep}{second}"}
    script = str(ROOT / "scripts/pick_python.py")
    done = subprocess.run(
        [sys.executable, script, "--explain"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "/opt/linked/python3.11"
    assert "/opt/shared/python3.11" in done.stderr  # --explain lists the others
    # nothing usable: exit 1 and print nothing, so make falls back to python3.11 / python3
    _fake_python(first, "python3.11", _probe("/opt/shared/python3.11", venv=False))
    _fake_python(second, "python3.11", _probe("/opt/linked/python3.11", version="3.10.4"))
    done = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and done.stdout == ""
