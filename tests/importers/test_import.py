"""Bulk imports: JSONL and CSV files, summaries, resuming, idempotency, the real data sets, CLI."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from fyp.auth import hash_key
from fyp.catalog import Catalog
from fyp.cli import app as cli
from fyp.config import CatalogSettings, IngestSettings
from fyp.events import EventIngestor
from fyp.importers import ImportKind, ImportSummary, run_import, shared_data
from fyp.importers.files import count_rows, read_rows
from fyp.storage.data import open_data_store
from fyp.storage.data.memory import MemoryDataStore

TS = "2026-01-01T00:00:00Z"


class World:
    """A memory store with the catalog and ingestor the importer drives."""

    def __init__(self) -> None:
        self.store = MemoryDataStore()
        self.catalog = Catalog(self.store, CatalogSettings())
        self.ingestor = EventIngestor(self.store, IngestSettings())

    def run(
        self, kind: ImportKind, rows: Iterable[Any], source: str, batch_size: int = 1000
    ) -> ImportSummary:
        return run_import(
            kind,
            rows,
            self.store,
            self.catalog,
            self.ingestor,
            source=source,
            batch_size=batch_size,
        )


@pytest.fixture
def world() -> World:
    w = World()
    w.run(ImportKind.users, [{"id": u} for u in ("u1", "u2", "c1")], "seed-users")
    w.run(ImportKind.videos, [{"id": v, "creator_id": "c1"} for v in ("v1", "v2")], "seed-videos")
    return w


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    lines = [r if isinstance(r, str) else orjson.dumps(r).decode() for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def events(n: int, prefix: str = "e") -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{prefix}{i}",
            "user_id": "u1" if i % 2 else "u2",
            "type": "play",
            "video_id": "v1",
            "watch_ms": 1000 + i,
            "ts": TS,
        }
        for i in range(n)
    ]


# -- files -----------------------------------------------------------------------------------


def test_users_from_jsonl_with_summary(world: World, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "users.jsonl",
        [
            {"id": "a1", "region": "us", "interests": ["#Cooking", "travel"]},
            "this line is not json",
            {"id": "a2", "birth_year": 1500},
            {"id": "a3"},
            "[1, 2]",
        ],
    )
    summary = world.run(ImportKind.users, read_rows(path), "users-file")
    assert (summary.read, summary.stored, summary.rejected, summary.skipped) == (5, 2, 3, 0)
    a1 = world.store.get_user("a1")
    assert a1 is not None
    assert (a1.region, a1.interests) == ("US", ["cooking", "travel"])
    assert world.store.get_user("a2") is None
    assert summary.reasons["birth_year: Input should be greater than or equal to 1900"] == 1
    assert sum(summary.reasons.values()) == 3
    assert [e.split(":")[0] for e in summary.examples] == ["row 2", "row 3", "row 5"]


def test_videos_from_csv_with_list_cells(world: World, tmp_path: Path) -> None:
    header = ["id", "creator_id", "caption", "hashtags", "allowed_regions", "duration_ms"]
    path = write_csv(
        tmp_path / "videos.csv",
        header,
        [
            ["cv1", "c1", "Hi #There", "Cats|#Dogs|cats", "us|gb", "12000"],
            ["cv2", "c1", "", "", "", ""],
            ["cv3", "nobody", "", "x", "", "5"],
            ["cv4", "c1", "", "", "", "-1"],
        ],
    )
    assert count_rows(path) == 4
    summary = world.run(ImportKind.videos, read_rows(path), "videos-file")
    assert (summary.read, summary.stored, summary.rejected) == (4, 2, 2)
    cv1 = world.store.get_video("cv1")
    assert cv1 is not None
    assert cv1.hashtags == ["cats", "dogs", "there"]
    assert cv1.allowed_regions == ["US", "GB"]
    assert cv1.duration_ms == 12000
    cv2 = world.store.get_video("cv2")
    assert cv2 is not None
    assert (cv2.hashtags, cv2.duration_ms, cv2.allowed_regions) == ([], None, None)
    assert summary.reasons["unknown creator"] == 1  # ids are cut off to group reasons
    assert any(e.startswith("row 3: unknown creator 'nobody'") for e in summary.examples)
    assert any(e.startswith("row 4: duration_ms") for e in summary.examples)


def test_users_from_csv(world: World, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "users.csv",
        ["id", "region", "interests", "birth_year"],
        [["cu1", "de", "diy|Garden", "1990"], ["cu2", "", "", ""]],
    )
    summary = world.run(ImportKind.users, read_rows(path), "users-csv")
    assert (summary.stored, summary.rejected) == (2, 0)
    cu1 = world.store.get_user("cu1")
    assert cu1 is not None
    assert (cu1.region, cu1.interests, cu1.birth_year) == ("DE", ["diy", "garden"], 1990)


def test_events_from_csv(world: World, tmp_path: Path) -> None:
    header = ["event_id", "user_id", "type", "video_id", "watch_ms", "ts", "extra"]
    path = write_csv(
        tmp_path / "events.csv",
        header,
        [
            ["ce1", "u1", "play", "v1", "3000", TS, '{"screen": "fyp"}'],
            ["ce2", "u1", "like", "v2", "", "1767225600", ""],
            ["ce3", "u1", "play", "v1", "", TS, ""],
            ["ce4", "ghost", "like", "v1", "", TS, ""],
        ],
    )
    summary = world.run(ImportKind.events, read_rows(path), "events-csv")
    assert (summary.read, summary.stored, summary.duplicates, summary.rejected) == (4, 2, 0, 2)
    ce1 = world.store.get_event("ce1")
    assert ce1 is not None
    assert (ce1.watch_ms, ce1.extra) == (3000, {"screen": "fyp"})
    ce2 = world.store.get_event("ce2")
    assert ce2 is not None
    assert ce2.ts == datetime(2026, 1, 1, tzinfo=UTC)
    assert summary.reasons == {"a play event needs watch_ms": 1, "unknown user": 1}


def test_events_from_jsonl_in_batches(world: World, tmp_path: Path) -> None:
    rows = events(7)
    rows[3]["watch_ms"] = -1
    path = write_jsonl(tmp_path / "events.jsonl", rows)
    assert count_rows(path) == 7
    summary = world.run(ImportKind.events, read_rows(path), "events-jsonl", batch_size=3)
    assert (summary.read, summary.stored, summary.rejected) == (7, 6, 1)
    assert summary.examples == ["row 4: watch_ms: Input should be greater than or equal to 0"]
    assert world.store.import_progress("events-jsonl") == 7
    assert world.store.count_events() == 6


# -- resuming and idempotency ----------------------------------------------------------------


def _fails_after(rows: list[dict[str, Any]], n: int) -> Iterator[dict[str, Any]]:
    for i, row in enumerate(rows):
        if i == n:
            raise OSError("the disk went away")
        yield row


def test_interrupted_import_resumes_after_the_last_committed_batch(world: World) -> None:
    rows = events(10)
    # batches of 3: two commit (rows 0-5), the third breaks while being read at row 7
    with pytest.raises(OSError, match="disk went away"):
        world.run(ImportKind.events, _fails_after(rows, 7), "resume", batch_size=3)
    assert world.store.import_progress("resume") == 6
    assert world.store.count_events() == 6

    summary = world.run(ImportKind.events, rows, "resume", batch_size=3)
    assert summary.skipped == 6
    assert (summary.read, summary.stored, summary.duplicates, summary.rejected) == (4, 4, 0, 0)
    assert world.store.count_events() == 10
    assert world.store.import_progress("resume") == 10
    assert sorted(e.event_id for _, e in world.store.read_events()) == sorted(
        r["event_id"] for r in rows
    )


def test_rerunning_a_finished_import_skips_every_row(world: World) -> None:
    rows = events(5)
    world.run(ImportKind.events, rows, "done", batch_size=2)
    summary = world.run(ImportKind.events, rows, "done", batch_size=2)
    assert (summary.skipped, summary.read, summary.stored) == (5, 0, 0)
    assert world.store.count_events() == 5


def test_reimporting_the_same_events_stores_nothing_twice(world: World) -> None:
    rows = events(5)
    first = world.run(ImportKind.events, rows, "copy-1", batch_size=2)
    assert (first.stored, first.duplicates) == (5, 0)
    # the same rows under another source name (e.g. the file was touched) are all duplicates
    second = world.run(ImportKind.events, rows, "copy-2", batch_size=2)
    assert (second.skipped, second.read, second.stored, second.duplicates) == (0, 5, 0, 5)
    assert world.store.count_events() == 5


def test_reimporting_a_catalog_is_idempotent(world: World) -> None:
    users = [{"id": "r1", "region": "FR"}, {"id": "r2"}]
    world.run(ImportKind.users, users, "cat-1")
    world.run(ImportKind.users, users, "cat-2")
    assert world.store.existing_user_ids({"r1", "r2"}) == {"r1", "r2"}
    r1 = world.store.get_user("r1")
    assert r1 is not None
    assert r1.region == "FR"


# -- the real data sets' layouts -------------------------------------------------------------


def _tiktok_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "tiktok"
    folder.mkdir(parents=True)
    write_csv(
        folder / "interactions.csv",
        ["user_id", "item_id", "split"],
        [
            ["0", "10", "train"],
            ["0", "11", "train"],
            ["1", "10", "train"],
            ["1", "12", "test"],
            ["0", "10", "train"],  # the same interaction twice: one event
            ["2", "13", "val"],
        ],
    )
    return tmp_path / "data"


def test_tiktok_adapter_rows(tmp_path: Path) -> None:
    ds = shared_data.tiktok(_tiktok_dir(tmp_path))
    # The catalog holds every user and video of the file; only events follow the splits.
    assert [u["id"] for u in ds.users] == [
        "tt_u0",
        "tt_u1",
        "tt_u2",
        "tt_c10",
        "tt_c11",
        "tt_c12",
        "tt_c13",
    ]
    assert [(v["id"], v["creator_id"]) for v in ds.videos] == [
        ("tt_v10", "tt_c10"),
        ("tt_v11", "tt_c11"),
        ("tt_v12", "tt_c12"),
        ("tt_v13", "tt_c13"),
    ]
    assert [e["event_id"] for e in ds.events] == ["tt:0:10", "tt:0:11", "tt:1:10", "tt:0:10"]
    assert {e["type"] for e in ds.events} == {"like"}
    times = [datetime.fromisoformat(e["ts"]) for e in ds.events]
    assert times == sorted(times)
    assert times[0] == shared_data.TIKTOK_EPOCH
    assert times[1] - times[0] == timedelta(seconds=1)
    both = shared_data.tiktok(tmp_path / "data", ("train", "test"))
    assert "tt_v12" in {v["id"] for v in both.videos}
    assert len(both.events) == 5


def test_tiktok_import_end_to_end(tmp_path: Path) -> None:
    w = World()
    ds = shared_data.tiktok(_tiktok_dir(tmp_path))
    users = w.run(ImportKind.users, ds.users, "tt:users")
    videos = w.run(ImportKind.videos, ds.videos, "tt:videos")
    evs = w.run(ImportKind.events, ds.events, "tt:events")
    assert (users.stored, users.rejected) == (7, 0)
    assert (videos.stored, videos.rejected) == (4, 0)
    assert (evs.read, evs.stored, evs.duplicates, evs.rejected) == (4, 3, 1, 0)
    like = w.store.get_event("tt:1:10")
    assert like is not None
    assert (like.user_id, like.video_id, like.type) == ("tt_u1", "tt_v10", "like")
    assert like.extra == {"source": "tiktok", "split": "train"}
    v10 = w.store.get_video("tt_v10")
    assert v10 is not None
    assert v10.duration_ms is None


KUAIRAND_HEADER = [
    "video_id",
    "author_id",
    "video_type",
    "upload_dt",
    "upload_type",
    "visible_status",
    "video_duration",
    "server_width",
    "server_height",
    "music_id",
    "music_type",
    "tag",
]


def _kuairand_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "kuairand"
    folder.mkdir(parents=True)
    write_csv(
        folder / "video_features_basic_pure.csv",
        KUAIRAND_HEADER,
        [
            [
                "1",
                "100",
                "NORMAL",
                "2022-04-01",
                "ShortImport",
                "public",
                "12345.0",
                "720",
                "1280",
                "555",
                "9",
                "39,68",
            ],
            [
                "2",
                "100",
                "NORMAL",
                "2022-04-02",
                "ShortImport",
                "public",
                "",
                "720",
                "1280",
                "556",
                "9",
                "8",
            ],
            [
                "3",
                "101",
                "AD",
                "2022-04-03",
                "LongImport",
                "public",
                "8000.4",
                "1080",
                "1920",
                "",
                "",
                "",
            ],
        ],
    )
    return tmp_path / "data"


def test_kuairand_adapter_and_import(tmp_path: Path) -> None:
    ds = shared_data.kuairand(_kuairand_dir(tmp_path))
    assert ds.users == [{"id": "kr_c100"}, {"id": "kr_c101"}]
    assert ds.events == []
    w = World()
    users = w.run(ImportKind.users, ds.users, "kr:users")
    videos = w.run(ImportKind.videos, ds.videos, "kr:videos")
    assert (users.stored, users.rejected) == (2, 0)
    assert (videos.stored, videos.rejected) == (3, 0)
    v1 = w.store.get_video("kr_v1")
    assert v1 is not None
    assert v1.creator_id == "kr_c100"
    assert v1.hashtags == ["kr_tag39", "kr_tag68"]
    assert v1.duration_ms == 12345
    assert v1.sound_id == "kr_s555"
    assert v1.created_at == datetime(2022, 4, 1, tzinfo=UTC)
    assert v1.moderation == "approved"
    v2 = w.store.get_video("kr_v2")
    assert v2 is not None
    assert (v2.duration_ms, v2.hashtags) == (None, ["kr_tag8"])
    v3 = w.store.get_video("kr_v3")
    assert v3 is not None
    assert (v3.duration_ms, v3.sound_id, v3.hashtags) == (8000, None, [])


@pytest.mark.parametrize("adapter", [shared_data.tiktok, shared_data.kuairand])
def test_adapters_name_the_missing_file(tmp_path: Path, adapter: Any) -> None:
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        adapter(tmp_path)


# -- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'fyp.db'}"
    monkeypatch.chdir(tmp_path)  # no stray .env, var/ under tmp
    monkeypatch.setenv("FYP_DATABASE_URL", url)
    return url


def test_cli_imports_files_into_the_configured_store(cli_env: str, tmp_path: Path) -> None:
    runner = CliRunner()
    users = write_jsonl(tmp_path / "u.jsonl", [{"id": "u1"}, {"id": "u2"}, {"id": "c1"}])
    videos = write_jsonl(tmp_path / "v.jsonl", [{"id": "v1", "creator_id": "c1"}])
    evs = write_jsonl(tmp_path / "e.jsonl", [*events(3), {"event_id": "bad", "type": "x"}])
    for kind, path in (("users", users), ("videos", videos)):
        r = runner.invoke(cli, ["import", kind, str(path)])
        assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["import", "events", str(evs)])
    assert r.exit_code == 0, r.output
    assert "stored" in r.stdout
    assert "rejected" in r.stdout
    store = open_data_store(cli_env)
    try:
        assert store.count_events() == 3
        assert store.get_event("e2") is not None
        assert store.get_video("v1") is not None
    finally:
        store.close()

    again = runner.invoke(cli, ["import", "events", str(evs)])
    assert again.exit_code == 0, again.output
    assert "skipped" in again.stdout
    store = open_data_store(cli_env)
    try:
        assert store.count_events() == 3
    finally:
        store.close()


def test_cli_import_of_only_bad_rows_fails(cli_env: str, tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"event_id": "x"}, "nonsense"])
    r = CliRunner().invoke(cli, ["import", "events", str(bad)])
    assert r.exit_code == 1, r.output
    assert "rejected" in r.stdout


def test_cli_import_of_a_missing_file_fails(cli_env: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["import", "users", str(tmp_path / "nope.jsonl")])
    assert r.exit_code == 2
    assert "no such file" in r.output


def test_cli_creates_a_working_key(cli_env: str) -> None:
    r = CliRunner().invoke(cli, ["keys", "create", "--scope", "app", "--name", "phone"])
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[-1]
    assert secret.startswith("fyp_")
    assert secret not in r.stderr  # the secret goes to stdout only, once
    store = open_data_store(cli_env)
    try:
        key = store.find_api_key(hash_key(secret))
        assert key is not None
        assert (key.scope, key.name, key.revoked) == ("app", "phone", False)
    finally:
        store.close()
    listed = CliRunner().invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0
    assert key.id in listed.stdout
    assert secret not in listed.stdout


def test_cli_refuses_an_unknown_scope(cli_env: str) -> None:
    r = CliRunner().invoke(cli, ["keys", "create", "--scope", "root"])
    assert r.exit_code == 2


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["migrate"],
        ["demo"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["import"],
        ["import", "users"],
        ["import", "videos"],
        ["import", "events"],
        ["import", "tiktok"],
        ["import", "kuairand"],
    ],
)
def test_cli_help(command: list[str]) -> None:
    r = CliRunner().invoke(cli, [*command, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage" in r.stdout
