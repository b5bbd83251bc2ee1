"""Statistics for A/B results: SRM check, Welch and delta-method intervals, CUPED.

The user is the unit of analysis everywhere: callers aggregate events per user first and pass one
value (or one numerator/denominator pair) per user. Events of one user are correlated, so treating
them as independent samples would make every interval too narrow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

# Kohavi et al. (Trustworthy Online Controlled Experiments, ch. 21) recommend p < 0.0005-0.001 for
# the SRM alarm: it is checked on every experiment at every refresh, so a looser threshold would
# raise false alarms, and a real mismatch on thousands of users gives p far below it (a 52/48
# split of 20,000 users scores chi2 = 32, p ~ 1.5e-8).
SRM_THRESHOLD = 0.001
ALPHA = 0.05

Status = Literal["ok", "not_enough_data"]
Method = Literal["welch", "delta", "welch+cuped"]


@dataclass(frozen=True, slots=True)
class SrmResult:
    """Sample-ratio-mismatch check: do the arms hold the share of users their weights promise?"""

    chi2: float
    p_value: float
    mismatch: bool
    threshold: float
    observed: dict[str, int]
    expected: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def srm_check(
    observed: Mapping[str, int], weights: Mapping[str, float], threshold: float = SRM_THRESHOLD
) -> SrmResult:
    """Pearson chi-square goodness of fit of the users per arm against the arms' weights.

    Args:
        observed: users counted in each arm.
        weights: each arm's planned share (any positive scale; normalised here).
        threshold: the p-value below which the split is declared a mismatch.

    Returns:
        The statistic, its p-value, and ``mismatch`` (never set when no user is counted yet).
    """
    names = list(weights)
    counts = np.array([observed.get(n, 0) for n in names], dtype=float)
    w = np.array([weights[n] for n in names], dtype=float)
    total = counts.sum()
    expected = total * w / w.sum()
    if total == 0 or len(names) < 2:
        return SrmResult(
            0.0, 1.0, False, threshold, {n: 0 for n in names}, dict.fromkeys(names, 0.0)
        )
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    p = float(sps.chi2.sf(chi2, df=len(names) - 1))
    return SrmResult(
        chi2=chi2,
        p_value=p,
        mismatch=p < threshold,
        threshold=threshold,
        observed={n: int(c) for n, c in zip(names, counts, strict=True)},
        expected={n: float(e) for n, e in zip(names, expected, strict=True)},
    )


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treatment against control on one metric.

    ``diff`` is treatment - control with its 95% interval ``ci_low..ci_high``; ``rel_lift`` is
    ``diff / control`` (its interval is the absolute one scaled by the control value, which
    ignores the control's own noise: read it as a guide, decide on the absolute interval).
    With ``status == "not_enough_data"`` only the counts and means are set.
    """

    status: Status
    method: Method
    n_control: int
    n_treatment: int
    control: float | None
    treatment: float | None
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    rel_lift: float | None = None
    rel_ci_low: float | None = None
    rel_ci_high: float | None = None
    significant: bool = False
    cuped_theta: float | None = None
    variance_reduction: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in asdict(self).items()}


def _finite(v: Any) -> Any:
    # JSON has no NaN/inf; an undefined statistic is null.
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _arr(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64).ravel()


def _mean(x: NDArray[np.float64]) -> float | None:
    return float(x.mean()) if x.size else None


def _lift(
    diff: float, lo: float, hi: float, control: float | None
) -> tuple[float | None, float | None, float | None]:
    if not control:
        return None, None, None
    return diff / control, lo / control, hi / control


def welch(
    control: ArrayLike, treatment: ArrayLike, *, min_users: int = 2, alpha: float = ALPHA
) -> Comparison:
    """Welch's t-test and interval for the difference of per-user means.

    Args:
        control: one value per control user.
        treatment: one value per treatment user.
        min_users: below this many users in either arm the answer is ``not_enough_data``
            (never below 2: a variance needs two values).
        alpha: 1 - confidence level of the interval and the significance threshold.
    """
    return _welch(_arr(control), _arr(treatment), min_users, alpha, "welch")


def _welch(
    a: NDArray[np.float64], b: NDArray[np.float64], min_users: int, alpha: float, method: Method
) -> Comparison:
    na, nb = a.size, b.size
    if min(na, nb) < max(min_users, 2):
        return Comparison("not_enough_data", method, na, nb, _mean(a), _mean(b))
    ma, mb = float(a.mean()), float(b.mean())
    va, vb = float(a.var(ddof=1)) / na, float(b.var(ddof=1)) / nb
    diff = mb - ma
    se = math.sqrt(va + vb)
    if se == 0.0:
        # Identical constants in both arms: no evidence of a difference, or a certain one.
        p = 1.0 if diff == 0 else 0.0
        lo = hi = diff
    else:
        df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
        t = diff / se
        p = float(2 * sps.t.sf(abs(t), df))
        half = float(sps.t.ppf(1 - alpha / 2, df)) * se
        lo, hi = diff - half, diff + half
    rel, rlo, rhi = _lift(diff, lo, hi, ma)
    return Comparison(
        "ok", method, na, nb, ma, mb, diff, lo, hi, p, rel, rlo, rhi, significant=p < alpha
    )


def _ratio_var(num: NDArray[np.float64], den: NDArray[np.float64]) -> tuple[float, float]:
    """The ratio sum(num)/sum(den) and its delta-method variance (users as i.i.d. units)."""
    n = num.size
    mx, my = float(num.mean()), float(den.mean())
    r = mx / my
    vx = float(num.var(ddof=1))
    vy = float(den.var(ddof=1))
    cxy = float(np.cov(num, den, ddof=1)[0, 1])
    var = (vx - 2 * r * cxy + r * r * vy) / (n * my * my)
    return r, max(var, 0.0)


def delta_ratio(
    control_num: ArrayLike,
    control_den: ArrayLike,
    treatment_num: ArrayLike,
    treatment_den: ArrayLike,
    *,
    min_users: int = 2,
    alpha: float = ALPHA,
) -> Comparison:
    """Difference of ratio metrics (e.g. completions per play) with a delta-method interval.

    Each arm's metric is ``sum(num) / sum(den)`` over its users. A user's events are correlated,
    so the variance comes from the per-user (num, den) pairs through the delta method
    (Deng et al., "Applying the Delta Method in Metric Analytics", 2018), with a normal interval.
    Users with a zero denominator carry no information about the ratio and are dropped.
    """
    cn, cd = _arr(control_num), _arr(control_den)
    tn, td = _arr(treatment_num), _arr(treatment_den)
    keep_c, keep_t = cd > 0, td > 0
    cn, cd, tn, td = cn[keep_c], cd[keep_c], tn[keep_t], td[keep_t]
    na, nb = cn.size, tn.size
    ra = float(cn.sum() / cd.sum()) if na else None
    rb = float(tn.sum() / td.sum()) if nb else None
    if min(na, nb) < max(min_users, 2):
        return Comparison("not_enough_data", "delta", na, nb, ra, rb)
    ra_, va = _ratio_var(cn, cd)
    rb_, vb = _ratio_var(tn, td)
    diff = rb_ - ra_
    se = math.sqrt(va + vb)
    z = float(sps.norm.ppf(1 - alpha / 2))
    # A zero standard error (every user identical) is certainty either way.
    p = float(2 * sps.norm.sf(abs(diff / se))) if se > 0 else float(diff == 0)
    lo, hi = diff - z * se, diff + z * se
    rel, rlo, rhi = _lift(diff, lo, hi, ra_)
    return Comparison(
        "ok", "delta", na, nb, ra_, rb_, diff, lo, hi, p, rel, rlo, rhi, significant=p < alpha
    )


def cuped_theta(ys: Sequence[ArrayLike], xs: Sequence[ArrayLike]) -> float:
    """theta = cov(Y, X) / var(X) pooled over all arms (one theta keeps the estimate unbiased)."""
    y = np.concatenate([_arr(v) for v in ys])
    x = np.concatenate([_arr(v) for v in xs])
    if y.size < 2:
        return 0.0
    vx = float(x.var(ddof=1))
    if vx == 0.0:
        return 0.0
    return float(np.cov(y, x, ddof=1)[0, 1] / vx)


def cuped(
    control: ArrayLike,
    treatment: ArrayLike,
    control_pre: ArrayLike,
    treatment_pre: ArrayLike,
    *,
    min_users: int = 2,
    alpha: float = ALPHA,
) -> Comparison:
    """Welch on CUPED-adjusted values ``Y - theta * (X - mean(X))`` (Deng et al., WSDM 2013).

    ``X`` is the same user's pre-period value of the metric (0 for a user with no pre-period
    activity). The adjustment keeps the means (the pooled mean of X is subtracted) and removes
    the part of each user's variance that was predictable before the experiment started.
    ``variance_reduction`` is ``1 - var(adjusted) / var(raw)`` pooled over the arms.
    """
    a, b = _arr(control), _arr(treatment)
    xa, xb = _arr(control_pre), _arr(treatment_pre)
    if xa.size != a.size or xb.size != b.size:
        raise ValueError("each user needs one pre-period value")
    if min(a.size, b.size) < max(min_users, 2):
        return Comparison("not_enough_data", "welch+cuped", a.size, b.size, _mean(a), _mean(b))
    theta = cuped_theta([a, b], [xa, xb])
    mx = float(np.concatenate([xa, xb]).mean())
    adj_a, adj_b = a - theta * (xa - mx), b - theta * (xb - mx)
    raw = np.concatenate([a - a.mean(), b - b.mean()])
    adj = np.concatenate([adj_a - adj_a.mean(), adj_b - adj_b.mean()])
    raw_var = float(raw.var())
    reduction = 1.0 - float(adj.var()) / raw_var if raw_var > 0 else 0.0
    res = _welch(adj_a, adj_b, min_users, alpha, "welch+cuped")
    # Report the raw arm means: the adjusted ones differ from them by the pre-period imbalance.
    return replace(
        res,
        control=float(a.mean()),
        treatment=float(b.mean()),
        cuped_theta=theta,
        variance_reduction=reduction,
    )


def gini(values: ArrayLike) -> float:
    """Gini coefficient of non-negative values (0: all equal, towards 1: one takes all)."""
    x = np.sort(_arr(values))
    n = x.size
    total = float(x.sum())
    if n == 0 or total == 0.0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float((2.0 * (ranks * x).sum()) / (n * total) - (n + 1) / n)
