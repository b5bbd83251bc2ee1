"""Experiment results as terminal tables (``fyp experiments results``)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


def _num(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{v:+.1%}"
    return f"{v:,.4g}"


def results_view(res: dict[str, Any]) -> Group:
    srm = res["srm"]
    head = Text(
        f"{res['experiment']} ({res['state']}), users per arm: "
        + ", ".join(
            f"{a['name']}{' (control)' if a['name'] == res['control'] else ''} {a['users']:,}"
            for a in res["arms"]
        )
    )
    if srm["mismatch"]:
        srm_line = Text(
            f"SAMPLE RATIO MISMATCH: p = {srm['p_value']:.2g} < {srm['threshold']}; "
            "the split is broken, do not trust the metrics below",
            style="bold red",
        )
    else:
        srm_line = Text(f"SRM check passed (p = {srm['p_value']:.3g})", style="green")
    parts: list[Any] = [head, srm_line]
    if res["status"] == "not_enough_data":
        parts.append(
            Text(
                f"not enough data yet: fewer than {res['min_users_per_arm']} users in an arm",
                style="yellow",
            )
        )
    table = Table(title="metrics (treatment - control, 95% CI)")
    for col in ("metric", "arm", "control", "treatment", "diff", "95% CI", "lift", "p", ""):
        table.add_column(col, justify="right" if col not in ("metric", "arm") else "left")
    for m in res["metrics"]:
        label = m["name"] + (" *" if m["primary"] else " (g)" if m["guardrail"] else "")
        for c in m["comparisons"]:
            if c["status"] != "ok":
                table.add_row(label, c["arm"], _num(c["control"]), _num(c["treatment"]), "", "",
                              "", "", "not enough data")  # fmt: skip
                continue
            verdict = "significant" if c["significant"] else ""
            if c["method"] == "welch+cuped" and c["variance_reduction"] is not None:
                verdict += f" (CUPED -{c['variance_reduction']:.0%} var)"
            table.add_row(
                label,
                c["arm"],
                _num(c["control"]),
                _num(c["treatment"]),
                _num(c["diff"]),
                f"[{_num(c['ci_low'])}, {_num(c['ci_high'])}]",
                _num(c["rel_lift"], pct=True),
                f"{c['p_value']:.3g}",
                verdict.strip(),
            )
    parts.append(table)
    pop = Table(title="exposure per arm")
    for col in ("arm", "impressions", "coverage", "creator Gini", "new videos", "new creators"):
        pop.add_column(col, justify="right")
    for arm, p in res["population"].items():
        pop.add_row(
            arm,
            f"{p['impressions']:,}",
            "-" if p["coverage"] is None else f"{p['coverage']:.1%}",
            "-" if p["creator_gini"] is None else f"{p['creator_gini']:.3f}",
            "-" if p["new_video_share"] is None else f"{p['new_video_share']:.1%}",
            "-" if p["new_creator_share"] is None else f"{p['new_creator_share']:.1%}",
        )
    parts.append(pop)
    return Group(*parts)
