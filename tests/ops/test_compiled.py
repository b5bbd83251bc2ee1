"""The feed's hot modules compiled with mypyc (``fyp compile``, ``fyp.ops.compiled``): a build
is only used for the sources it was built from, `fyp serve` runs from it, and the feed's
behaviour tests pass on the compiled modules (mypyc checks annotations at run time, so a wrong
one would fail there and nowhere else)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import fyp
from fyp.__main__ import prepare
from fyp.cli import app
from fyp.ops import compiled
from tests.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


def _environ(var_dir: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("FYP_")}
    keep.pop("PYTHONPATH", None)
    huge = "glibc.malloc.hugetlb=1"  # as the re-executed process has it: only the path differs
    return {**keep, "FYP_VAR_DIR": str(var_dir), "GLIBC_TUNABLES": huge, **extra}


def _execs(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    for name in [k for k in os.environ if k.startswith("FYP_")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        if name.startswith("FYP_"):
            monkeypatch.setenv(name, value)
    calls: list[dict[str, str]] = []
    prepare(["serve"], environ, lambda exe, argv, env: calls.append(dict(env)))
    return calls


def _fake_build(var_dir: Path) -> Path:
    out = compiled.build_dir(var_dir)
    out.mkdir(parents=True)
    (out / "BUILT").write_text("test\n")
    return out


def test_serve_runs_from_a_build_for_these_sources_first_on_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = _fake_build(tmp_path)
    [env] = _execs(_environ(tmp_path, PYTHONPATH="/elsewhere"), monkeypatch)
    assert env["PYTHONPATH"] == os.pathsep.join([str(build), "/elsewhere"])
    # the re-executed process has it first already: no loop
    assert _execs(_environ(tmp_path, PYTHONPATH=env["PYTHONPATH"]), monkeypatch) == []


def test_serve_ignores_a_build_that_is_off_unfinished_or_for_other_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = _fake_build(tmp_path)
    off = _environ(tmp_path, FYP_SERVER__COMPILED="false")
    assert _execs(off, monkeypatch) == []
    (build / "BUILT").unlink()  # interrupted
    assert _execs(_environ(tmp_path), monkeypatch) == []
    other = build.parent / "0123456789abcdef"  # built from other sources
    other.mkdir()
    (other / "BUILT").write_text("x\n")
    assert _execs(_environ(tmp_path), monkeypatch) == []


def test_the_digest_covers_every_source_file(tmp_path: Path) -> None:
    copy = tmp_path / "fyp"
    shutil.copytree(Path(fyp.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = compiled.source_digest(copy)
    assert before == compiled.source_digest(Path(fyp.__file__).parent)
    target = copy / "filters" / "moderation_filter.py"  # not one of the compiled modules
    target.write_text(target.read_text() + "\n# edited\n")
    assert compiled.source_digest(copy) != before


# -- a real build (about a minute) --


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    var_dir = tmp_path_factory.mktemp("compiled-var")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")  # pragma: no cover - every machine of ours has one
    out = compiled.build(var_dir)
    assert out == compiled.fresh_build(var_dir)
    assert compiled.build(var_dir) == out  # up to date: found, not rebuilt
    yield out


def test_the_build_holds_every_hot_module_compiled(build: Path) -> None:
    for module in compiled.HOT_MODULES:
        stem = (build / "fyp" / module).with_suffix("")
        assert list(stem.parent.glob(f"{stem.name}.cpython-*.so")), module
    assert compiled.source_digest(build / "fyp") == build.name


def test_fyp_compile_finds_an_up_to_date_build(
    build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FYP_VAR_DIR", str(build.parent.parent))
    result = CliRunner().invoke(app, ["compile"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(str(build))
    assert "up to date" in result.output


def test_the_feed_behaves_the_same_on_the_compiled_modules(build: Path) -> None:
    """The feed's behaviour and contract tests, run on the compiled build."""
    env = {**os.environ, "PYTHONPATH": str(build)}
    probe = subprocess.run(
        [sys.executable, "-c", "from fyp.ops import compiled; print(compiled.running_compiled())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "True"
    tests = [
        "tests/pipeline",
        "tests/sources",
        "tests/selectors",
        "tests/events",
        "tests/api/test_feed_api.py",
        "tests/storage/test_online_state_contract.py",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout


def test_fyp_serve_serves_feeds_from_the_build(build: Path, tmp_path: Path) -> None:
    var_dir = build.parent.parent  # the build's own var_dir: `fyp serve` finds it there
    server = ServerProcess(f"sqlite:///{tmp_path / 'fyp.db'}", var_dir)
    server.env.pop("PYTHONPATH", None)
    server.env.pop("FYP_SERVER__COMPILED", None)
    server.start(timeout_s=60)
    try:
        assert server.proc is not None
        environ = Path(f"/proc/{server.proc.pid}/environ").read_bytes().split(b"\0")
        assert f"PYTHONPATH={build}".encode() in environ
        log = server.log.read_text()
        assert "feed modules: compiled" in log
        assert f"interpreter: CPython {platform.python_version()}, libpython " in log
        health = httpx.get(f"{server.url}/healthz", timeout=10)
        assert health.status_code == 200
    finally:
        server.stop()
