"""The ``fyp`` command line: serve, migrate, import, keys, demo."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from fyp.api.app import build_services
from fyp.api.deps import Services
from fyp.auth import create_key
from fyp.config import Settings
from fyp.importers import ImportKind, ImportSummary, run_import, shared_data
from fyp.importers.files import count_rows, read_rows
from fyp.models import Scope
from fyp.storage.data import StoreUnavailable

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
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    settings = Settings()
    host = host or settings.api.host
    port = port or settings.api.port
    console.print(f"fyp serving on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "timeout_graceful_shutdown": 30,
    }
    if workers == 1:
        from fyp.api.app import create_app

        uvicorn.run(create_app(settings), **common)
    else:
        # Each worker builds its own app from the same FYP_* environment.
        uvicorn.run("fyp.api.app:create_app_from_env", factory=True, workers=workers, **common)


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


def _import(
    services: Services, kind: ImportKind, rows: Iterable[Any], total: int, source: str
) -> ImportSummary:
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
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


if __name__ == "__main__":
    app()
