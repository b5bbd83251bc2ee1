"""The per-day summary table of a simulation."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich.table import Table

from fyp.simulator.runner import DaySummary


def summary_table(days: Sequence[DaySummary], catalog: Collection[str]) -> Table:
    table = Table(title="simulated audience, per day")
    for col in (
        "day",
        "active users",
        "sessions",
        "feeds",
        "videos viewed",
        "watch h",
        "watch min/session",
        "completion",
        "skips",
        "likes",
        "coverage",
        "fallbacks",
        "errors",
    ):
        table.add_column(col, justify="right")
    for d in days:
        table.add_row(
            str(d.day),
            f"{d.active_users:,}",
            f"{d.sessions:,}",
            f"{d.feeds:,}",
            f"{d.views:,}",
            f"{d.watch_ms / 3_600_000:,.1f}",
            f"{d.watch_min_per_session:.2f}",
            f"{d.completion_rate:.1%}",
            f"{d.skip_rate:.1%}",
            f"{d.likes:,}",
            f"{d.coverage(catalog):.1%}",
            f"{d.fallbacks:,}",
            f"{d.errors:,}",
        )
    return table
