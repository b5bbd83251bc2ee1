"""The ``fyp`` command line: serve, migrate, import, keys, demo."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Column, Table

from fyp.api.app import build_services
from fyp.api.deps import Services
from fyp.auth import create_key
from fyp.config import Settings
from fyp.importers import ImportKind, ImportSummary, run_import, shared_data
from fyp.importers.files import count_rows, read_rows
from fyp.models import Scope
from fyp.storage.data import StoreUnavailable

if TYPE_CHECKING:
    import uvicorn

    from fyp.simulator.live import LiveAudience

app = typer.Typer(help="fyp: the For You engine for short-video apps.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
import_app = typer.Typer(
    help="Load users, videos or events from JSONL/CSV files, or a real data set.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
app.add_typer(import_app, name="import")
console = Console(stderr=True)
out = Console()


def _services(migrate: bool = True) -> Services:
    settings = Settings()
    services = build_services(settings)
    if migrate and settings.auto_migrate:
        try:
            services.store.migrate()
        except StoreUnavailable as e:
            console.print(f"[red]store unavailable:[/] {e}")
            raise typer.Exit(2) from e
    return services


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: server.workers).")
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(help="Log every request (default: yes, unless a simulated audience runs)."),
    ] = None,
    simulate: Annotated[
        int | None,
        typer.Option(
            "--simulate",
            min=0,
            metavar="N",
            help="N simulated users keep requesting feeds and sending events through the API "
            "while the server runs, over its own catalog (0: off; default: simulator.users). "
            "Needs the keys `fyp demo` writes.",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs, Prometheus metrics at /metrics)."""
    import uvicorn

    from fyp.ops.logs import log_config

    settings = Settings()
    host = host or settings.api.host
    port = port or settings.api.port
    workers = workers or settings.server.workers
    cfg = settings.server
    _compiled_notice(settings)
    audience = _live_audience(settings, host, port, simulate, wait_ready=workers > 1)
    if access_log is None:
        access_log = audience is None
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": access_log,
        # On SIGTERM uvicorn stops accepting, lets in-flight requests finish for this long,
        # then runs the app's shutdown (which waits for ingest threads before closing the store).
        "timeout_graceful_shutdown": max(1, round(cfg.graceful_shutdown_s)),
        "log_config": log_config(cfg.log_format, cfg.log_level),
    }
    if workers == 1:
        from fyp.api.app import create_app

        console.print(f"fyp serving on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
        _audience_notice(audience, access_log)
        if audience is None:
            uvicorn.run(create_app(settings), **common)
        else:
            _serve_with_audience(uvicorn.Config(create_app(settings), **common), audience)
        return
    # -- scale -- several workers: each builds its own app from the same FYP_* environment.
    url = settings.resolved_database_url()
    if url.startswith("memory:"):
        console.print(
            "[red]memory:// cannot be shared by several workers:[/] use SQLite or PostgreSQL"
        )
        raise typer.Exit(2)
    if settings.online.backend == "memory":
        console.print(
            "[yellow]online state is per worker (online.backend=memory):[/] "
            "use FYP_ONLINE__BACKEND=redis so every worker sees every event"
        )
    if settings.auto_migrate:  # once here, not racing in N workers
        from fyp.storage.data import open_data_store

        store = open_data_store(url)
        try:
            store.migrate()
        except StoreUnavailable as e:
            console.print(f"[red]store unavailable:[/] {e}")
            raise typer.Exit(2) from e
        finally:
            store.close()
        os.environ["FYP_AUTO_MIGRATE"] = "false"
    if cfg.metrics:
        # prometheus-client's multiprocess mode: every worker writes its samples under this
        # directory and /metrics merges them. It must start empty (stale pids would count).
        metrics_dir = (cfg.metrics_dir or settings.var_dir / "metrics").resolve()
        metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in metrics_dir.glob("*.db"):  # only prometheus-client's own files
            stale.unlink()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        os.environ["FYP_SERVER__METRICS_DIR"] = str(metrics_dir)
    console.print(f"fyp serving on http://{host}:{port} with {workers} workers")
    _audience_notice(audience, access_log)
    from fyp.ops.supervisor import run_workers

    config = uvicorn.Config(
        "fyp.api.app:create_app_from_env",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=cfg.worker_healthcheck_s,
        **common,
    )
    if audience is not None:  # it plays from this supervisor process, once a worker answers
        audience.start()
    try:
        asked = run_workers(config)
    finally:
        if audience is not None:
            audience.stop()
    if not asked:
        console.print("[red]the server stopped by itself:[/] a worker failed (see the log above)")
        raise typer.Exit(1)


def _live_audience(
    settings: Settings, host: str, port: int, users: int | None, *, wait_ready: bool
) -> LiveAudience | None:
    """The simulated audience ``fyp serve --simulate N`` runs, or None when it is off."""
    cfg = settings.simulator
    if users is not None:
        cfg = cfg.model_copy(update={"users": users})
    if cfg.users == 0:
        return None
    from fyp.simulator.live import LiveAudience

    path = cfg.keys_file or settings.var_dir / "demo-keys.env"
    keys = _read_keys_file(path)
    app_key, admin_key = keys.get("FYP_DEMO_APP_KEY"), keys.get("FYP_DEMO_ADMIN_KEY")
    if not app_key or not admin_key:
        console.print(
            f"[yellow]no simulated audience:[/] no demo keys in {path} (run `fyp demo` first)"
        )
        return None
    # A wildcard bind address is not one to connect to: talk to this machine's loopback.
    target = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in target:
        target = f"[{target}]"
    return LiveAudience(
        cfg,
        url=f"http://{target}:{port}",
        key=app_key,
        admin_key=admin_key,
        wait_ready=wait_ready,
    )


def _audience_notice(audience: LiveAudience | None, access_log: bool) -> None:
    if audience is None:
        return
    cfg = audience.settings
    console.print(
        f"simulated audience on: {cfg.users} users request feeds and send events through the "
        f"API, one simulated day every {cfg.day_seconds:g}s "
        "(turn it off: --simulate 0, or make run SIMULATE=0)",
        soft_wrap=True,
    )
    if not access_log:
        console.print("access log off while it runs (--access-log turns it on)", soft_wrap=True)


def _serve_with_audience(config: uvicorn.Config, audience: LiveAudience) -> None:
    """``uvicorn.run`` for one worker, with ``audience`` playing while the server is up: it
    starts once the server answers and stops (its last requests answered or cancelled)
    before the server shuts down, on SIGTERM or Ctrl-C alike."""
    import socket

    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and not self.should_exit:
                audience.start()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            import asyncio

            await asyncio.to_thread(audience.stop)
            await super().shutdown(sockets)

    server = Server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled
        pass
    finally:
        audience.stop()
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE


def _compiled_notice(settings: Settings) -> None:
    from fyp.ops import compiled, interpreter

    found = interpreter.probe()
    notice = f"interpreter: {interpreter.describe(found)}"
    if found["libpython_shared"] is True:
        notice += " (one with libpython linked in serves a feed faster: docs/benchmarks.md)"
    console.print(notice, soft_wrap=True)
    if compiled.running_compiled():
        console.print(f"feed modules: compiled ({compiled.package_dir().parent})")
    elif settings.server.compiled:
        console.print(
            "feed modules: plain Python (no `fyp compile` build for these sources; one "
            "makes a feed cost 11-19% less CPU)"
        )


@app.command("compile")
def compile_() -> None:
    """Compile the feed's hot modules with mypyc for `fyp serve` (needs a C compiler and the
    Python headers; about a minute). The build is kept under var_dir/compiled for exactly the
    sources installed now; `fyp serve` runs from it unless server.compiled is off."""
    from fyp.ops import compiled

    settings = Settings()
    try:
        with console.status("compiling the feed's hot modules ..."):
            build = compiled.build(settings.var_dir, say=console.print)
    except (RuntimeError, OSError) as e:
        console.print(f"[red]compile failed:[/] {e}")
        raise typer.Exit(1) from e
    out.print(str(build))


@app.command()
def migrate() -> None:
    """Bring the store's schema up to date (safe to run again)."""
    services = _services(migrate=False)
    try:
        services.store.migrate()
        status = services.store.migration_status()
    except StoreUnavailable as e:
        console.print(f"[red]store unavailable:[/] {e}")
        raise typer.Exit(2) from e
    out.print(f"schema at revision {status.current} (head {status.head})")


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        Scope, typer.Option(help="admin: catalog, moderation, keys; app: events, feeds.")
    ],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
) -> None:
    """Create an API key and print its secret (shown only once)."""
    services = _services()
    key, secret = create_key(services.store, scope, name)
    console.print(f"created {key.scope} key {key.id}; keep the secret, it is not stored:")
    out.print(secret)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    table = Table("id", "scope", "name", "created", "revoked")
    for k in _services().store.list_api_keys():
        table.add_row(k.id, k.scope, k.name, k.created_at.isoformat(), "yes" if k.revoked else "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key; running servers stop accepting it within api.key_cache_seconds."""
    if not _services().store.revoke_api_key(key_id):
        console.print(f"[red]no active key {key_id}[/]")
        raise typer.Exit(1)
    out.print(f"revoked {key_id}")


def _progress() -> Progress:
    """The progress bar every long command shows: step, bar, done/total, time left."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _import(
    services: Services, kind: ImportKind, rows: Iterable[Any], total: int, source: str
) -> ImportSummary:
    with _progress() as progress:
        task = progress.add_task(f"import {kind.value}", total=total)
        summary = run_import(
            kind,
            rows,
            services.store,
            services.catalog,
            services.ingestor,
            source=source,
            on_progress=lambda n: progress.advance(task, n),
        )
    _print_summary(summary)
    return summary


def _print_summary(s: ImportSummary) -> None:
    table = Table(title=f"import {s.kind.value}", show_header=False)
    table.add_row("rows read", str(s.read))
    if s.skipped:
        table.add_row("skipped (done by an earlier run)", str(s.skipped))
    table.add_row("stored", str(s.stored))
    if s.kind is ImportKind.events:
        table.add_row("duplicates (already stored)", str(s.duplicates))
    table.add_row("rejected", str(s.rejected))
    for reason, n in s.reasons.most_common(10):
        table.add_row(f"  {reason}", str(n))
    out.print(table)
    for example in s.examples:
        out.print(f"  [dim]{example}[/]")


def _file_import(kind: ImportKind, path: Path) -> None:
    if not path.is_file():
        console.print(f"[red]no such file: {path}[/]")
        raise typer.Exit(2)
    stat = path.stat()
    source = f"{kind.value}:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    summary = _import(_services(), kind, read_rows(path), count_rows(path), source)
    if summary.rejected and not summary.stored and summary.read:
        raise typer.Exit(1)


FileArg = Annotated[
    Path, typer.Argument(help="A .jsonl (one JSON object per line) or .csv file; lists in CSV: a|b")
]


@import_app.command("users")
def import_users(path: FileArg) -> None:
    """Import users (fields as in PUT /v1/users/{id}, plus id)."""
    _file_import(ImportKind.users, path)


@import_app.command("videos")
def import_videos(path: FileArg) -> None:
    """Import videos (fields as in PUT /v1/videos/{id}, plus id); creators must exist."""
    _file_import(ImportKind.videos, path)


@import_app.command("events")
def import_events(path: FileArg) -> None:
    """Import events (fields as in POST /v1/events); users and videos must exist."""
    _file_import(ImportKind.events, path)


DataDir = Annotated[
    Path | None,
    typer.Option(help="Folder holding tiktok/ and kuairand/ (default: settings.data_dir)."),
]


def _data_dir(given: Path | None) -> Path:
    return given or Settings().data_dir


@import_app.command("tiktok")
def import_tiktok(
    data_dir: DataDir = None,
    splits: Annotated[str, typer.Option(help="Comma-separated splits to import.")] = "train",
) -> None:
    """Import the TikTok interactions as users, videos and `like` events."""
    services = _services()
    wanted = [s.strip() for s in splits.split(",") if s.strip()]
    ds = shared_data.tiktok(_data_dir(data_dir), wanted)
    tag = f"tiktok:{','.join(sorted(wanted))}:v1"
    _import(services, ImportKind.users, ds.users, len(ds.users), f"{tag}:users")
    _import(services, ImportKind.videos, ds.videos, len(ds.videos), f"{tag}:videos")
    _import(services, ImportKind.events, ds.events, len(ds.events), f"{tag}:events")


@import_app.command("kuairand")
def import_kuairand(data_dir: DataDir = None) -> None:
    """Import the KuaiRand-Pure videos and their creators as a catalog."""
    services = _services()
    ds = shared_data.kuairand(_data_dir(data_dir))
    _import(services, ImportKind.users, ds.users, len(ds.users), "kuairand:v1:users")
    _import(services, ImportKind.videos, ds.videos, len(ds.videos), "kuairand:v1:videos")


@app.command()
def demo(
    keys_file: Annotated[
        Path | None, typer.Option(help="Where to write demo API keys (default var/demo-keys.env).")
    ] = None,
) -> None:
    """Load the small demo world (idempotent) and make sure demo API keys exist."""
    from fyp import demo as world

    services = _services()
    settings = services.settings
    w = world.build()
    _import(services, ImportKind.users, w.users, len(w.users), "demo:v1:users")
    _import(services, ImportKind.videos, w.videos, len(w.videos), "demo:v1:videos")
    _import(services, ImportKind.events, w.events, len(w.events), "demo:v1:events")
    path = keys_file or settings.var_dir / "demo-keys.env"
    if not path.exists():
        _, admin = create_key(services.store, "admin", "demo admin")
        _, app_key = create_key(services.store, "app", "demo app")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"FYP_DEMO_ADMIN_KEY={admin}\nFYP_DEMO_APP_KEY={app_key}\n")
        os.chmod(path, 0o600)
    out.print(f"demo keys (local use only) in {path}:")
    out.print(path.read_text().strip())


# -- training and evaluation --
models_app = typer.Typer(
    help="List model versions and choose the active one.", no_args_is_help=True
)
eval_app = typer.Typer(
    help="Offline evaluation on real data or the event log.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")


class _RichProgress:
    """The trainer's steps as rich progress bars on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._p = progress
        self._task: Any = None

    def start(self, step: str, total: int | None = None) -> None:
        self._task = self._p.add_task(step, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._p.advance(self._task, n)

    def finish(self) -> None:
        if self._task is not None:
            task = self._p.tasks[self._task]
            self._p.update(self._task, total=task.total or 1, completed=task.total or 1)
            self._task = None


def _command(ctx: typer.Context) -> str:
    """The command line that reproduces this run, rebuilt from the parsed options (sys.argv is
    the caller's, e.g. pytest's, when the CLI is invoked in-process)."""
    import shlex

    words = ["fyp", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        name = param.name
        source = ctx.get_parameter_source(name) if name else None
        if name is None or source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params[name]
        if param.param_type_name == "option":
            if getattr(param, "is_flag", False):
                negative = getattr(param, "secondary_opts", None) or ["?"]
                words.append(param.opts[0] if value else negative[0])
            else:
                words += [param.opts[0], str(value)]
        else:
            words.append(str(value))
    return shlex.join(words)


@app.command()
def train(
    activate: Annotated[bool, typer.Option(help="Make the new version the active one.")] = True,
    evaluate: Annotated[
        bool | None,
        typer.Option(
            help="Score the recipe by temporal leave-one-out on the log (default: settings)."
        ),
    ] = None,
) -> None:
    """Train a model version from the event log (and activate it)."""
    from fyp.leases import LeaseBusy
    from fyp.training import NothingToTrain, Trainer

    services = _services()
    with _progress() as progress:
        try:
            result = Trainer(
                services.settings, services.store, progress=_RichProgress(progress)
            ).run(activate=activate, evaluate=evaluate)
        except NothingToTrain as e:
            console.print(f"[yellow]nothing to train:[/] {e}")
            raise typer.Exit(1) from e
        except LeaseBusy as e:
            console.print(f"[yellow]another trainer is running:[/] {e}")
            raise typer.Exit(1) from e
    m = result.manifest
    table = Table(title=f"model version {result.version}", show_header=False)
    counts = m["counts"]
    for key in ("events", "users", "videos", "positives", "negatives", "served_rows"):
        table.add_row(key.replace("_", " "), f"{counts[key]:,}")
    window = m["data_window"]
    table.add_row("event seq", f"{window['first_seq']}..{window['last_seq']}")
    table.add_row("index", m["index"]["kind"])
    r = m["ranker"]
    table.add_row("ranker", ", ".join(r["actions"]) if r["trained"] else f"none ({r['why']})")
    for action, why in r.get("skipped", {}).items():
        table.add_row(f"  no {action} model", why)
    metrics = m["metrics"]
    if "skipped" in metrics:
        table.add_row("offline eval", f"skipped: {metrics['skipped']}")
    for name in ("fyp", "popularity", "fyp-next-item"):
        if name in metrics:
            x = metrics[name]
            table.add_row(f"{name} R@20 / NDCG@20", f"{x['recall']:.4f} / {x['ndcg']:.4f}")
    for step, sec in m["timings_s"].items():
        table.add_row(f"time {step}", f"{sec:.2f}s")
    table.add_row("peak memory", f"{m['peak_memory_mb']:.0f} MB")
    table.add_row("active", "yes" if result.activated else "no (fyp models activate ...)")
    out.print(table)


@models_app.command("list")
def models_list() -> None:
    """Model versions, newest last; the active one is marked."""
    from fyp.training import ModelRegistry

    table = Table("created", "active", "videos", "users", "events", "R@20 (log)")
    table.columns.insert(0, Column("version", no_wrap=True))
    for v in ModelRegistry(Settings()).list():
        table.add_row(
            v.version,
            v.created.replace("+00:00", "Z").replace("T", " "),
            "*" if v.active else "",
            f"{v.videos:,}",
            f"{v.users:,}",
            f"{v.events:,}",
            "" if v.recall is None else f"{v.recall:.4f}",
        )
    Console(width=max(out.size.width, 120)).print(table)


@models_app.command("activate")
def models_activate(version: str) -> None:
    """Make VERSION the active model (also the way to roll back); servers pick it up within
    training.reload_seconds, without a restart."""
    from fyp.training import ModelRegistry

    try:
        ModelRegistry(Settings()).activate(version)
    except KeyError as e:
        console.print(f"[red]{e.args[0]}[/]")
        raise typer.Exit(1) from e
    out.print(f"active model version: {version}")


def _print_report(report: Any) -> None:
    d = report.as_dict()
    table = Table(
        title=f"{d['dataset']} {d['part']}: top-{d['k']} over {d['models'][0]['users']:,} users"
    )
    for col in (
        "model",
        "Recall",
        "Precision",
        "NDCG",
        "HR",
        "coverage",
        "novelty",
        "creator Gini",
        "train s",
    ):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in d["models"]:
        table.add_row(
            r["name"],
            f"{r['recall']:.4f}",
            f"{r['precision']:.4f}",
            f"{r['ndcg']:.4f}",
            f"{r['hr']:.4f}",
            f"{r['coverage']:.3f}",
            f"{r['novelty']:.2f}",
            f"{r['creator_gini']:.3f}",
            f"{r['train_s']:.1f}",
        )
    for p in d["published"]:
        table.add_row(
            f"[dim]{p['name']} *[/]",
            f"[dim]{p['recall']:.4f}[/]",
            f"[dim]{p['precision']:.4f}[/]",
            f"[dim]{p['ndcg']:.4f}[/]",
            "",
            "",
            "",
            "",
            "",
        )
    table.columns[0].no_wrap = True
    wide = Console(width=max(out.size.width, 130))
    wide.print(table)
    for note in d["notes"]:
        wide.print(f"  {note}")
    if d["published_source"]:
        wide.print(f"  * published, not run here: {d['published_source']}")
    wide.print(f"  seed {d['seed']}, {d['seconds']:.0f}s; command: {d['command']}")


@eval_app.command("tiktok")
def eval_tiktok(
    ctx: typer.Context,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of every model.")] = 42,
    tune: Annotated[
        bool, typer.Option(help="Search the recipe grid on valid (else the tuned default).")
    ] = False,
    active_model: Annotated[
        bool,
        typer.Option(
            help="Also score the active model version (fyp import tiktok && fyp train) "
            "through the feed's own fold-in and index search (row fyp-live)."
        ),
    ] = False,
) -> None:
    """The published TikTok protocol: the engine beside popularity, implicit ALS and the
    published table (tuned on valid, reported on test)."""
    import orjson

    from fyp.evaluation.data import load_tiktok
    from fyp.evaluation.report import tiktok_report

    try:
        split = load_tiktok(_data_dir(data_dir))
    except FileNotFoundError as e:
        console.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    active = None
    if active_model:
        from fyp.training import ModelRegistry

        active = ModelRegistry(Settings()).current()
        if active is None:
            console.print("[red]no active model version: run `fyp train` first[/]")
            raise typer.Exit(2)
    with console.status("evaluating") as status:
        report = tiktok_report(
            split,
            _command(ctx),
            seed=seed,
            tune=tune,
            on_step=lambda s: status.update(s),
            active=active,
        )
    if as_json:
        sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    else:
        _print_report(report)


@eval_app.command("log")
def eval_log(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Temporal leave-one-out over the store's event log (each user's latest positive is
    test): the engine's retrieval beside popularity and the next-item signal."""
    import orjson

    from fyp.training import content
    from fyp.training.signals import SignalBuilder, catalog, read_pages
    from fyp.training.trainer import catalog_content, offline_metrics

    services = _services()
    cfg = services.settings.training
    store = services.store
    videos = catalog(store)
    builder = SignalBuilder(cfg.weights, store.video_briefs, [v.id for v in videos])
    for page in read_pages(store, cfg.page_size):
        builder.add_page(page)
    data = builder.build()
    vectors = catalog_content(services.settings, data.video_ids, {v.id: v for v in videos})
    nb = None
    if vectors is not None:
        nb, _ = content.nearest(vectors, cfg.embedding.content_neighbours)
    result = offline_metrics(data, nb, services.settings)
    result["command"] = _command(ctx)
    if as_json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        return
    if "skipped" in result:
        out.print(f"not evaluated: {result['skipped']}")
        return
    table = Table(title=f"event log, temporal leave-one-out, top-20 over {result['users']:,} users")
    for col in ("model", "Recall", "NDCG", "HR", "coverage"):
        table.add_column(col)
    for name in ("fyp", "popularity", "fyp-next-item"):
        r = result[name]
        table.add_row(
            name, f"{r['recall']:.4f}", f"{r['ndcg']:.4f}", f"{r['hr']:.4f}", f"{r['coverage']:.3f}"
        )
    out.print(table)
    out.print(f"  command: {result['command']}")


# -- experiments and simulator --
experiments_app = typer.Typer(
    help="A/B experiments on the feed's settings: create, start, stop, results.",
    no_args_is_help=True,
)
app.add_typer(experiments_app, name="experiments")


def _experiments() -> Any:
    from fyp.experiments.service import ExperimentService

    services = _services()
    return ExperimentService(services.store, services.settings)


def _exp_call(fn: Any, *args: Any) -> Any:
    from fyp.experiments.service import ExperimentError

    try:
        return fn(*args)
    except ExperimentError as e:
        console.print(f"[red]{e.message}[/]")
        raise typer.Exit(1) from e


def _print_experiment(record: Any) -> None:
    import orjson

    from fyp.experiments.service import describe

    out.print_json(orjson.dumps(describe(record)).decode())


@experiments_app.command("create")
def experiments_create(
    spec_file: Annotated[
        Path, typer.Argument(help="JSON spec (as POST /v1/experiments takes it); - for stdin.")
    ],
) -> None:
    """Create a draft experiment from a JSON spec."""
    import orjson
    from pydantic import ValidationError

    from fyp.experiments.spec import ExperimentSpec

    raw = sys.stdin.read() if str(spec_file) == "-" else spec_file.read_text()
    try:
        spec = ExperimentSpec.model_validate(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValidationError) as e:
        console.print(f"[red]invalid experiment spec:[/] {e}")
        raise typer.Exit(2) from e
    _print_experiment(_exp_call(_experiments().create, spec))


@experiments_app.command("list")
def experiments_list(
    state: Annotated[str | None, typer.Option(help="draft, running or stopped.")] = None,
) -> None:
    """List experiments."""
    from fyp.types import from_ms

    table = Table("name", "state", "layer", "traffic", "arms", "primary metric", "started")
    for e in _experiments().list(state):
        started = from_ms(e.started_ms).isoformat() if e.started_ms else ""
        arms = ", ".join(f"{a.name}:{a.weight:g}" for a in e.spec.arms)
        table.add_row(
            e.name, e.state, e.spec.layer, f"{e.spec.traffic:.0%}", arms,
            e.spec.primary_metric, started,
        )  # fmt: skip
    out.print(table)


@experiments_app.command("show")
def experiments_show(name: str) -> None:
    """Print an experiment's spec and state."""
    svc = _experiments()
    _print_experiment(_exp_call(svc.get, name))


@experiments_app.command("start")
def experiments_start(name: str) -> None:
    """Start a draft experiment (servers pick it up within experiments.cache_seconds)."""
    svc = _experiments()
    _print_experiment(_exp_call(svc.start, name))


@experiments_app.command("stop")
def experiments_stop(name: str) -> None:
    """Stop a running experiment; its results stay readable."""
    svc = _experiments()
    _print_experiment(_exp_call(svc.stop, name))


@experiments_app.command("results")
def experiments_results(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON of the API.")] = False,
) -> None:
    """SRM check, then every metric per arm with its difference, 95% CI and p-value."""
    import orjson

    from fyp.experiments.report import results_view

    svc = _experiments()
    res = _exp_call(svc.results, name)
    if as_json:
        sys.stdout.write(orjson.dumps(res).decode() + "\n")
        return
    out.print(results_view(res))


def _read_keys_file(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                found[k.strip()] = v.strip()
    return found


@app.command()
def simulate(
    users: Annotated[int, typer.Option(min=1, help="Simulated users.")] = 2000,
    days: Annotated[int, typer.Option(min=1, help="Simulated days.")] = 3,
    url: Annotated[str | None, typer.Option(help="API base URL (default from settings).")] = None,
    key: Annotated[
        str | None, typer.Option(help="App key (default: FYP_DEMO_APP_KEY of --keys-file).")
    ] = None,
    admin_key: Annotated[
        str | None, typer.Option(help="Admin key for --setup (default: from --keys-file).")
    ] = None,
    keys_file: Annotated[
        Path | None, typer.Option(help="Keys written by `fyp demo` (default var/demo-keys.env).")
    ] = None,
    catalog: Annotated[
        str, typer.Option(help="generator, or kuairand (settings.data_dir/kuairand).")
    ] = "generator",
    videos: Annotated[int, typer.Option(min=1, help="Generated catalog size.")] = 1500,
    setup: Annotated[
        bool, typer.Option(help="Load the catalog and the users through the admin API first.")
    ] = False,
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent simulated clients.")] = 16,
    page_size: Annotated[int, typer.Option(min=1, max=100, help="Feed items per request.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of catalog, tastes and behaviour.")] = 1,
) -> None:
    """Run a simulated audience against a running server and print a per-day summary."""
    import asyncio

    from fyp.simulator import SimConfig, Simulation, generate, kuairand, population
    from fyp.simulator.report import summary_table

    settings = Settings()
    base = url or f"http://{settings.api.host}:{settings.api.port}"
    keys = _read_keys_file(keys_file or settings.var_dir / "demo-keys.env")
    app_key = key or keys.get("FYP_DEMO_APP_KEY", "")
    admin = admin_key or keys.get("FYP_DEMO_ADMIN_KEY", "")
    if not app_key:
        console.print("[red]no app key:[/] pass --key or run `fyp demo` to write demo keys")
        raise typer.Exit(2)
    if catalog == "kuairand":
        try:
            cat = kuairand(settings.data_dir, seed=seed)
        except FileNotFoundError as e:
            console.print(f"[red]{e}[/]")
            raise typer.Exit(2) from e
    elif catalog == "generator":
        cat = generate(videos=videos, seed=seed)
    else:
        console.print(f"[red]unknown catalog {catalog!r}: use generator or kuairand[/]")
        raise typer.Exit(2)
    cfg = SimConfig(
        url=base, key=app_key, admin_key=admin, days=days, concurrency=concurrency,
        page_size=page_size, seed=seed,
    )  # fmt: skip
    sim = Simulation(cat, population(cat, users, seed=seed), cfg)
    if setup:
        if not admin:
            console.print("[red]--setup needs an admin key (--admin-key or --keys-file)[/]")
            raise typer.Exit(2)
        stored = asyncio.run(sim.setup())
        console.print(f"loaded {stored['users']:,} users and {stored['videos']:,} videos")
    with _progress() as progress:
        task = progress.add_task(f"simulate {days} day(s)", total=users * days)
        summaries = asyncio.run(sim.run(lambda n: progress.advance(task, n)))
    # wide enough for every column even when the output is a file or a pipe (80 columns then)
    Console(width=max(out.size.width, 170)).print(summary_table(summaries, cat.by_id))
    errors = [m for d in summaries for m in d.error_examples]
    for m in errors[:5]:
        out.print(f"  [dim]{m}[/]")
    if summaries and all(d.feeds == 0 for d in summaries):
        raise typer.Exit(1)


if __name__ == "__main__":  # `python -m fyp` skips this module's imports before its set-up
    from fyp.__main__ import main

    main()
