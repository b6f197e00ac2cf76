"""Intervals, tests and verdicts: one of each, used by every stage, suite and report.

- :func:`mean_ci`: a mean with a 95% interval over **independent units** (``groups``; default: each
  value its own unit): Wilson for 0/1 values without multi-row units at small n or at 0% / 100%;
  otherwise a (cluster) bootstrap percentile interval (units resampled with all their rows), normal
  above 5,000 units.
- :func:`paired_diff_ci`: the mean of paired differences b_i - a_i with its interval, a two-sided p
  value, the minimum detectable effect (``mde``) and the fixed / broken / unchanged counts. 0/1 scores
  at small n: McNemar's exact test and Newcombe's paired score interval; else a cluster bootstrap and
  a sign-flip randomisation test over units.
- :func:`verdict` / :func:`verdict_text`: the one rule turning a comparison into better / worse /
  up / down / "no effect larger than X" / "n too small".
- :func:`planned_mde` / :func:`planned_n`: the same MDE before an evaluation runs, for sizing it.
- :func:`holm`: Holm step-down adjusted p values for the metrics a report compares.
- :func:`gap_share_ci`: proxy-tuning's "share of the gap closed", (proxy - base) / (tuned - base),
  with the three models' units resampled jointly; undefined where the gap itself is not shown.
- :func:`boot_stat_ci`: percentile interval of any statistic of resampled items (AUC, rates).
- :func:`auc`: Mann-Whitney ROC AUC, P(pos > neg) + P(tie)/2.
- :func:`wilson` / :func:`newcombe_paired` / :func:`mcnemar_exact`: the small-sample building blocks.

**Units (issue 21).** Rows that hang on one independent draw -- the 11 wrapper families of one
invariance question all depend on its plain answer -- are one *unit*. Resampling rows treats them as
11 independent draws and gives intervals up to sqrt(11) times too narrow; every function here takes
``groups`` (``groups[i]`` = the unit of row i), resamples units with all their rows, and reports
``n`` = units beside ``n_rows``. ``experiments/cluster_coverage.py`` measures the difference.

All resampling draws come from ``numpy.random.default_rng(seed)``: a seed in, the same result out.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Hashable, Sequence

import numpy as np

Z95 = 1.959963984540054  # z_{0.975}
Z80 = 0.8416212335729143  # z_{0.80}: 80% power
ALPHA = 0.05
N_BOOT = 1000
N_PERM = 9999  # sign-flip resamples (exact enumeration when 2^units is fewer)
NORMAL_ABOVE = 5000
# Below this many independent units, 0/1 scores get exact / score methods (Wilson, McNemar's exact
# test, Newcombe's paired interval) instead of the percentile bootstrap: at n ~ 10 the bootstrap of a
# 0/1 mean undercovers badly (10/10 gives [1, 1]; 4 fixed / 0 broken reads as an effect while the
# exact McNemar p is 0.125). 30 is the usual rule of thumb for the normal approximation of a
# proportion to hold away from 0 and 1; the score methods stay valid above it, the bootstrap is kept
# there because it is what clustered and continuous metrics use too.
SMALL_N = 30
TOO_SMALL = "n too small"


def _ok(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _finite(values: Sequence[Any]) -> np.ndarray:
    return np.asarray([float(x) for x in values if _ok(x)], dtype=np.float64)


def _binary(*arrays: np.ndarray) -> bool:
    return all(bool(np.isin(a, (0.0, 1.0)).all()) for a in arrays)


def _units(groups: Sequence[Hashable] | None, n: int) -> np.ndarray:
    """Unit index 0..G-1 of each row, in order of first appearance (each row its own unit by default)."""
    if groups is None:
        return np.arange(n)
    if len(groups) != n:
        raise ValueError(f"groups: {len(groups)} labels for {n} values; one per value")
    index: dict[Hashable, int] = {}
    return np.asarray([index.setdefault(g, len(index)) for g in groups], dtype=np.int64)


def _unit_sums(v: np.ndarray, u: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: S_g = sum of w_i v_i and m_g = sum of w_i over its rows (w = 1: the row count)."""
    g = int(u.max()) + 1
    w = np.ones(len(v)) if w is None else w
    return np.bincount(u, weights=w * v, minlength=g), np.bincount(u, weights=w, minlength=g)


def _weights(weights: Sequence[float] | None, n: int, keep: list[int], who: str) -> np.ndarray | None:
    """The kept rows' weights, or None where there are none or all are equal (then every method applies)."""
    if weights is None:
        return None
    if len(weights) != n:
        raise ValueError(f"{who}: {len(weights)} weights for {n} values; one per value")
    w = np.asarray([float(weights[i]) for i in keep], dtype=np.float64)
    if len(w) and (not np.isfinite(w).all() or (w <= 0).any()):
        raise ValueError(f"{who}: weights must be positive numbers")
    return None if not len(w) or np.all(w == w[0]) else w


def _cluster_se(s: np.ndarray, m: np.ndarray) -> float:
    """Cluster-robust standard error of the row mean R = sum S_g / sum m_g over G units:
    SE = sqrt(G / (G - 1) * sum_g (S_g - R m_g)^2) / sum m_g  (= s / sqrt(n) with one row per unit)."""
    g = len(s)
    if g < 2:
        return float("nan")
    r = s.sum() / m.sum()
    return float(math.sqrt(g / (g - 1) * float(((s - r * m) ** 2).sum())) / m.sum())


def _boot_ratio(s: np.ndarray, m: np.ndarray, seed: int, n_boot: int) -> list[float]:
    """Percentile 95% interval of sum S / sum m with the G units resampled with replacement."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(s), (n_boot, len(s)))
    boots = s[idx].sum(axis=1) / m[idx].sum(axis=1)
    return [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]


def _sig(p: float) -> float:
    """A p value to 6 significant digits (tiny p values keep their size)."""
    return float(f"{p:.6g}")


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), digits)


def mean_ci(values: Sequence[float | None], seed: int, n_boot: int = N_BOOT,
            groups: Sequence[Hashable] | None = None, weights: Sequence[float] | None = None) -> dict[str, Any]:
    """``{"mean", "ci95": [lo, hi] | None, "n", "n_rows", "method"}`` (+ ``"note"``): the row mean with a
    95% interval over independent units.

    ``groups[i]`` names the unit of ``values[i]`` (default: every value its own unit); ``n`` counts
    units, ``n_rows`` values. ``None`` and NaN values are left out (with their group label).
    ``weights[i]`` > 0 (optional) makes the mean sum(w v) / sum(w) (e.g. equal weight per generating
    suite in health); unequal weights skip the Wilson branches. The interval (``method``):

    - one unit: none (``ci95`` None, ``note`` "n too small") -- never a zero-width [m, m];
    - 0/1 values, one row per unit, n < :data:`SMALL_N` or all values equal: ``"wilson"``, the Wilson
      score interval (10/10 -> [0.7225, 1]);
    - 0/1 values in multi-row units, all equal: Wilson over the units (k = n or 0 units of n);
    - otherwise ``"bootstrap"`` (``"cluster bootstrap"`` with multi-row units): the percentile
      interval of sum S / sum m over units resampled with replacement (S_g, m_g = a unit's sum and row
      count), or ``"normal"`` above 5,000 units: mean +- 1.96 SE with the cluster-robust SE
      sqrt(G/(G-1) sum (S_g - mean m_g)^2) / sum m_g.

    Rounded to 4 decimals.
    """
    if groups is not None and len(groups) != len(values):
        raise ValueError(f"mean_ci: {len(groups)} group labels for {len(values)} values; one per value")
    keep = [i for i, x in enumerate(values) if _ok(x)]
    v = np.asarray([float(values[i]) for i in keep], dtype=np.float64)
    u = _units(None if groups is None else [groups[i] for i in keep], len(v))
    w = _weights(weights, len(values), keep, "mean_ci")
    n_rows = int(len(v))
    if not n_rows:
        return {"mean": None, "ci95": None, "n": 0, "n_rows": 0, "method": None}
    s, m = _unit_sums(v, u, w)
    g = len(s)
    mean = float(s.sum() / m.sum())
    clustered = bool((np.bincount(u) > 1).any())
    out: dict[str, Any] = {"mean": round(mean, 4), "ci95": None, "n": g, "n_rows": n_rows}
    if g < 2:
        return {**out, "method": None, "note": TOO_SMALL}
    is01, same = _binary(v), bool(v.min() == v.max())
    if is01 and w is None and not clustered and (g < SMALL_N or same):
        return {**out, "ci95": wilson(int(v.sum()), g)["ci95"], "method": "wilson"}
    if is01 and same:
        ci = wilson(g if v[0] == 1.0 else 0, g)["ci95"]
        return {**out, "ci95": ci, "method": "wilson over units"}
    if g > NORMAL_ABOVE:
        h = Z95 * _cluster_se(s, m)
        ci, method = [mean - h, mean + h], "normal"
    else:
        ci, method = _boot_ratio(s, m, seed, n_boot), "cluster bootstrap" if clustered else "bootstrap"
    method += " (weighted)" if w is not None else ""
    return {**out, "ci95": [round(ci[0], 4), round(ci[1], 4)], "method": method}


def mcnemar_exact(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar p value: the binomial test of ``fixed`` successes in ``fixed + broken``
    discordant pairs at p = 1/2 (``scipy.stats.binomtest``); 1.0 with no discordant pair.
    Textbook check: 4 vs 0 -> 2 * 0.5^4 = 0.125."""
    from scipy.stats import binomtest

    n = int(fixed) + int(broken)
    return 1.0 if n == 0 else float(binomtest(int(fixed), n, 0.5).pvalue)


def newcombe_paired(n11: int, n10: int, n01: int, n00: int, z: float = Z95) -> list[float]:
    """Newcombe's square-and-add (hybrid score) 95% interval for the paired difference p_B - p_A.

    Pairs (A, B) of 0/1 outcomes: n11 both 1, n10 A=1 B=0 ("broken"), n01 A=0 B=1 ("fixed"), n00
    both 0; N the total. With p_A = (n11 + n10)/N, p_B = (n11 + n01)/N, D = p_B - p_A and (l_A, u_A),
    (l_B, u_B) their Wilson score intervals:

        L = D - sqrt((p_B - l_B)^2 - 2 phi (p_B - l_B)(u_A - p_A) + (u_A - p_A)^2)
        U = D + sqrt((u_B - p_B)^2 - 2 phi (u_B - p_B)(p_A - l_A) + (p_A - l_A)^2)

    where phi estimates the correlation of the two proportions: with P = n11 n00 - n10 n01 and the
    four margins' product M, phi = (P - N/2)/sqrt(M) if P > N/2, 0 if 0 <= P <= N/2, P/sqrt(M) if
    P < 0, and 0 when a margin is empty. Newcombe (1998), "Improved confidence intervals for the
    difference between binomial proportions based on paired data", Stat Med 17:2635-2650, method 10;
    as in Fagerland, Lydersen & Laake (2017), Statistical Analysis of Contingency Tables, ch. 8
    (their Cavo et al. table 59/6/16/80 gives -0.0621 [-0.1186, -0.0046] for p_A - p_B).
    """
    n = n11 + n10 + n01 + n00
    if n <= 0:
        raise ValueError("newcombe_paired: no pairs")
    pa, pb = (n11 + n10) / n, (n11 + n01) / n
    la, ua = _wilson_bounds(n11 + n10, n, z)
    lb, ub = _wilson_bounds(n11 + n01, n, z)
    margins = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    phi = 0.0
    if margins > 0:
        p = n11 * n00 - n10 * n01
        phi = (p - n / 2) / math.sqrt(margins) if p > n / 2 else (p / math.sqrt(margins) if p < 0 else 0.0)
    d = pb - pa
    lo = d - math.sqrt(max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2))
    hi = d + math.sqrt(max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2))
    return [max(-1.0, lo), min(1.0, hi)]


def _sign_flip_p(unit_d: np.ndarray, seed: int) -> float:
    """Two-sided p of the sign-flip randomisation test over units: under "no effect" each unit's
    difference total D_g is as likely to be -D_g (the pair's two members exchangeable), so the null
    distribution of T = sum D_g is that of sum +-D_g. p = P(|T*| >= |T|): exact over all 2^G sign
    patterns when G <= 13, else (1 + #{|T*| >= |T|}) / (1 + 9,999) over random patterns (the
    Monte Carlo p of Phipson & Smyth 2010). The same test as ``scipy.stats.permutation_test`` with
    ``permutation_type="samples"`` on one sample, written out because that one takes ~1 s at 440
    units. With 0/1 scores and one row per unit it is McNemar's exact test."""
    d = np.asarray(unit_d, dtype=np.float64)
    d = d[d != 0]  # a zero total is the same under either sign
    if not len(d):
        return 1.0
    t_obs = abs(float(d.sum())) * (1 - 1e-12)  # ties count as "as extreme" despite float rounding
    if 2 ** len(d) <= N_PERM + 1:
        bits = (np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1
        null = np.abs((1 - 2 * bits) @ d)
        return float((null >= t_obs).mean())
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, N_PERM, 1000):
        k = min(1000, N_PERM - start)
        signs = 1 - 2 * rng.integers(0, 2, (k, len(d)), dtype=np.int8)
        hits += int((np.abs(signs @ d) >= t_obs).sum())
    return (1 + hits) / (1 + N_PERM)


def paired_diff_ci(a: Sequence[float | None], b: Sequence[float | None], seed: int, n_boot: int = N_BOOT,
                   groups: Sequence[Hashable] | None = None,
                   weights: Sequence[float] | None = None) -> dict[str, Any]:
    """Paired comparison of two score lists over the same rows (``a[i]`` and ``b[i]`` one row).

    ``groups[i]`` is the independent unit of row i (default: each row its own unit); pairs with a
    missing side are left out. ``weights[i]`` > 0 (optional) makes every mean sum(w x) / sum(w);
    unequal weights always take the bootstrap / sign-flip branch. Returns

    - ``a``, ``b``: the row means; ``diff``: mean of d_i = b_i - a_i; ``ci95``: its 95% interval
      (None with fewer than 2 units, ``note`` "n too small"); ``n``: units; ``n_rows``: rows;
    - ``p``: two-sided p value of "no difference"; ``mde``: the minimum detectable effect (80% power,
      two-sided alpha 0.05) at this n; ``method``: how ci95 and p were computed;
    - ``fixed`` / ``broken`` / ``same``: rows that went 0 -> 1 / 1 -> 0 / neither for 0/1 scores
      (d > 0, d < 0, d == 0 otherwise).

    Methods:

    - ``"mcnemar-exact/newcombe"``: 0/1 scores, one row per unit, n < :data:`SMALL_N`: McNemar's
      exact p (:func:`mcnemar_exact`) and Newcombe's paired score interval (:func:`newcombe_paired`).
    - ``"bootstrap/sign-flip"`` (``"cluster bootstrap/sign-flip"`` with multi-row units): the
      percentile interval of sum D_g / sum m_g with units resampled (D_g, m_g = a unit's difference
      total and rows), and the sign-flip randomisation p over units (:func:`_sign_flip_p`); normal
      interval with the cluster-robust SE above 5,000 units. 0/1 scores with no changed row at all get
      [-w, w] instead of the zero-width [0, 0], w = the Wilson upper bound of 0 changed units of n
      (a changed unit moves the mean by at most 1/n).

    MDE = (z_0.975 + z_0.80) * SE = 2.80 * SE (Cohen; Bloom 1995, "Minimum detectable effects"),
    with SE = sd(d)/sqrt(n) for one row per unit and the cluster-robust SE of the mean in general.
    For 0/1 scores SE is taken under the null from the discordance, SE0 = sqrt(sum D_g^2)/sum m_g
    (= sqrt(psi/n), psi the share of changed rows, for one row per unit), and floored at
    (2.80)^2 / n: an effect delta needs at least delta of the pairs discordant, and
    delta = 2.80 sqrt(delta / n) solves to 7.85 / n (so at n = 10 nothing below 0.785 is detectable).
    """
    if len(a) != len(b):
        raise ValueError(f"paired_diff_ci: {len(a)} vs {len(b)} items; pairs must line up")
    if groups is not None and len(groups) != len(a):
        raise ValueError(f"paired_diff_ci: {len(groups)} group labels for {len(a)} pairs; one per pair")
    keep = [i for i in range(len(a)) if _ok(a[i]) and _ok(b[i])]
    if not keep:
        return {"a": None, "b": None, "diff": None, "ci95": None, "n": 0, "n_rows": 0, "fixed": 0, "broken": 0,
                "same": 0, "p": None, "mde": None, "method": None}
    av = np.asarray([float(a[i]) for i in keep])
    bv = np.asarray([float(b[i]) for i in keep])
    u = _units(None if groups is None else [groups[i] for i in keep], len(keep))
    w = _weights(weights, len(a), keep, "paired_diff_ci")
    d = bv - av
    s, m = _unit_sums(d, u, w)
    g, clustered, is01 = len(s), bool((np.bincount(u) > 1).any()), _binary(av, bv)
    binary = is01 and w is None  # the exact 0/1 methods count rows: equal weights only
    diff = float(s.sum() / m.sum())
    wm = (lambda x: float(x.mean())) if w is None else (lambda x: float((w * x).sum() / w.sum()))
    out: dict[str, Any] = {"a": round(wm(av), 4), "b": round(wm(bv), 4), "diff": round(diff, 4),
                           "ci95": None, "n": g, "n_rows": int(len(d)), "fixed": int((d > 0).sum()),
                           "broken": int((d < 0).sum()), "same": int((d == 0).sum())}
    if is01:
        mde = binary_mde(math.sqrt(float((s ** 2).sum())) / m.sum(), g)
    else:
        mde = (Z95 + Z80) * _cluster_se(s, m) if g > 1 else None
    out["mde"] = _r(mde)
    if binary and not clustered and g < SMALL_N:
        out["p"] = _sig(mcnemar_exact(out["fixed"], out["broken"]))
        out["method"] = "mcnemar-exact/newcombe"
        if g < 2:
            return {**out, "mde": None, "note": TOO_SMALL}
        n11 = int(((av == 1) & (bv == 1)).sum())
        n00 = int(((av == 0) & (bv == 0)).sum())
        lo, hi = newcombe_paired(n11, out["broken"], out["fixed"], n00)
        return {**out, "ci95": [round(lo, 4), round(hi, 4)]}
    out["p"] = _sig(_sign_flip_p(s, seed))
    out["method"] = ("cluster bootstrap" if clustered else "bootstrap") + "/sign-flip" + (" (weighted)" if w is not None else "")
    if g < 2:
        return {**out, "mde": None, "note": TOO_SMALL}
    if is01 and not np.any(d):
        w = wilson(0, g)["ci95"][1]
        return {**out, "ci95": [-w, w], "method": out["method"] + " (no change: +-Wilson bound of 0 of n)"}
    if g > NORMAL_ABOVE:
        h = Z95 * _cluster_se(s, m)
        ci = [diff - h, diff + h]
        out["method"] = out["method"].replace("bootstrap", "normal")
    else:
        ci = _boot_ratio(s, m, seed, n_boot)
    return {**out, "ci95": [round(ci[0], 4), round(ci[1], 4)]}


def binary_mde(se: float, n: int) -> float:
    """The minimum detectable effect of a paired 0/1 comparison (:func:`paired_diff_ci`'s): (z_0.975 +
    z_0.80) x SE, floored at (z_0.975 + z_0.80)^2 / n -- an effect delta needs at least delta of the n
    units discordant."""
    return max((Z95 + Z80) * se, (Z95 + Z80) ** 2 / n)


def planned_mde(n: int, discordant: float) -> float | None:
    """The MDE :func:`paired_diff_ci` will report for 0/1 scores on ``n`` units, one row each, when a
    share ``discordant`` of the pairs differ: :func:`binary_mde` at SE0 = sqrt(discordant / n). For
    sizing an evaluation before it runs (the measured MDE replaces it); None below 2 units."""
    return None if n < 2 else binary_mde(math.sqrt(discordant / n), n)


def planned_n(mde: float, discordant: float) -> int:
    """The fewest units whose :func:`planned_mde` is at most ``mde``: :func:`binary_mde` solved for n,
    n >= (z_0.975 + z_0.80)^2 x max(discordant / mde^2, 1 / mde)."""
    k2 = (Z95 + Z80) ** 2
    return max(2, math.ceil(k2 * max(discordant / mde ** 2, 1 / mde) - 1e-9))


def gap_share_ci(base: Sequence[float | None], proxy: Sequence[float | None], tuned: Sequence[float | None],
                 seed: int, n_boot: int = N_BOOT, groups: Sequence[Hashable] | None = None,
                 weights: Sequence[float] | None = None) -> dict[str, Any]:
    """Share of the gap closed (proxy-tuning, arXiv:2401.08565: 88-91% reported): how far a steered
    model moved from its base toward the base tuned directly, over the same rows (``base[i]``,
    ``proxy[i]``, ``tuned[i]`` one row; rows missing any of the three are left out):

        share = mean_i(proxy_i - base_i) / mean_i(tuned_i - base_i)

    = (proxy - base) / (tuned - base) of the row means (weighted means where ``weights``: the weights
    cancel into the unit totals). Per unit g (``groups``, as :func:`paired_diff_ci`) with
    P_g = sum of w_i (proxy_i - base_i) and T_g = sum of w_i (tuned_i - base_i) over its rows,
    share = sum P_g / sum T_g. Its 95% interval is the percentile interval of sum P*_g / sum T*_g over
    ``n_boot`` resamples of the units drawn **jointly** for the three models (one draw of units serves
    numerator and denominator, so their correlation is kept); resamples whose gap sums to 0 are left
    out, and where more than 2.5% are, an end of the interval is unbounded: ``ci95`` None.

    **Undefined** -- ``share`` and ``ci95`` None, ``note`` saying why -- unless the gap itself is
    shown: :func:`verdict` of tuned vs base (``gap``) must be up or down (its 95% interval excludes 0
    and p < 0.05). A ratio over a gap that may be 0 is any number, not a finding.

    Returns ``share``, ``ci95``, ``n`` (units), ``n_rows``, ``gap`` (:func:`paired_diff_ci` tuned vs
    base), ``moved`` (proxy vs base), ``method`` and, where it applies, ``note`` and
    ``undefined_resamples``. Rounded to 4 decimals.
    """
    if not len(base) == len(proxy) == len(tuned):
        raise ValueError(f"gap_share_ci: {len(base)}, {len(proxy)}, {len(tuned)} values; rows must line up")
    if groups is not None and len(groups) != len(base):
        raise ValueError(f"gap_share_ci: {len(groups)} group labels for {len(base)} rows; one per row")
    keep = [i for i in range(len(base)) if _ok(base[i]) and _ok(proxy[i]) and _ok(tuned[i])]
    pick = (lambda xs: None if xs is None else [xs[i] for i in keep])
    b, p, t = pick(base), pick(proxy), pick(tuned)
    g_, w_ = pick(groups), pick(weights)
    gap = paired_diff_ci(b, t, seed, n_boot, groups=g_, weights=w_)
    moved = paired_diff_ci(b, p, seed, n_boot, groups=g_, weights=w_)
    out: dict[str, Any] = {"share": None, "ci95": None, "n": gap["n"], "n_rows": gap["n_rows"], "gap": gap,
                           "moved": moved, "method": "bootstrap of units, the three models resampled jointly"}
    v = verdict(gap, 0)
    if v not in ("up", "down"):
        why = {"no-data": "no rows with all three models", TOO_SMALL: "n too small"}.get(
            v, f"the tuned - base gap is not shown (diff {gap['diff']}, 95% interval {gap['ci95']}, p {gap['p']})")
        return {**out, "note": f"undefined: {why}"}
    u = _units(g_, len(keep))
    w = _weights(w_, len(keep), list(range(len(keep))), "gap_share_ci")
    bv = np.asarray(b, dtype=np.float64)
    sp, _ = _unit_sums(np.asarray(p, dtype=np.float64) - bv, u, w)
    st, _ = _unit_sums(np.asarray(t, dtype=np.float64) - bv, u, w)
    out["share"] = round(float(sp.sum() / st.sum()), 4) + 0.0  # + 0.0: no "-0.0"
    idx = np.random.default_rng(seed).integers(0, len(st), (n_boot, len(st)))
    num, den = sp[idx].sum(axis=1), st[idx].sum(axis=1)
    ok = den != 0
    if (~ok).sum():
        out["undefined_resamples"] = int((~ok).sum())
    if (~ok).mean() > 0.025:
        return {**out, "note": f"interval unbounded: the resampled gap is 0 in {int((~ok).sum())} of {n_boot} "
                               "resamples"}
    r = num[ok] / den[ok]
    out["ci95"] = [round(float(np.percentile(r, 2.5)), 4) + 0.0, round(float(np.percentile(r, 97.5)), 4) + 0.0]
    return out


def verdict(c: dict | None, direction: int, alpha: float = ALPHA) -> str:
    """The verdict code of a paired comparison ``c`` (:func:`paired_diff_ci`) for a metric whose better
    direction is ``direction`` (+1 higher is better, -1 lower is better, 0 none):

    - ``"no-data"``: no paired rows; ``"n too small"``: no interval (fewer than 2 units);
    - ``"null"``: the 95% interval includes 0, or the p value (where the comparison has one) is not
      below ``alpha`` -- read as "no effect larger than X" (:func:`verdict_text`);
    - else ``"better"`` / ``"worse"`` by ``direction``, or ``"up"`` / ``"down"`` where it is 0.

    A stored comparison without a ``p`` (written before issue 21) is judged by its interval alone.
    """
    if not c or c.get("diff") is None or not c.get("n"):
        return "no-data"
    if not c.get("ci95"):
        return TOO_SMALL
    lo, hi = c["ci95"]
    if lo <= 0 <= hi or (c.get("p") is not None and c["p"] >= alpha):
        return "null"
    up = c["diff"] > 0
    if direction == 0:
        return "up" if up else "down"
    return "better" if up == (direction > 0) else "worse"


def effect_bound(c: dict) -> float | None:
    """X in "no effect larger than X": the larger end of the 95% interval in absolute value -- the
    effects the data rule out (the interval), not the ones the design could detect (``mde``)."""
    ci = c.get("ci95") if c else None
    return None if not ci else max(abs(ci[0]), abs(ci[1]))


def _g3(x: float) -> str:
    return format(x, ".3g")


def verdict_text(c: dict | None, direction: int, alpha: float = ALPHA) -> str:
    """:func:`verdict` in words: "better" / "worse" / "up" / "down" / "no effect larger than X" (X =
    :func:`effect_bound`; prefixed "unclear (interval excludes 0, p = ...)" where the 95% interval
    excludes 0 but the test's p does not pass) / "n too small" / "no data"."""
    v = verdict(c, direction, alpha)
    if v == "null":
        lo, hi = c["ci95"]
        if not lo <= 0 <= hi:  # the interval and the test disagree (small n): say so, call nothing
            return f"unclear (interval excludes 0, p = {_g3(c['p'])}): no effect larger than {_g3(effect_bound(c))}"
        return f"no effect larger than {_g3(effect_bound(c))}"
    return "no data" if v == "no-data" else v


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p values (Holm 1979), in the input order; None stays None and is not
    counted. With the m p values sorted p_(1) <= ... <= p_(m):
    adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)). Rejecting adj < alpha controls the family-wise
    error rate at alpha under any dependence between the tests."""
    idx = [i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    order = sorted(idx, key=lambda i: pvalues[i])
    m = len(order)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        out[i] = running
    return out


def boot_stat_ci(items: Sequence[Any], stat: Callable[[list[Any]], float], seed: int,
                 n_boot: int = N_BOOT) -> list[float] | None:
    """Percentile 95% interval of ``stat(resample of items)``; resamples where stat is NaN are skipped."""
    if not len(items):
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(items), (n_boot, len(items)))
    vals = [stat([items[j] for j in row]) for row in idx]
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    if not vals:
        return None
    return [round(float(np.percentile(vals, 2.5)), 4), round(float(np.percentile(vals, 97.5)), 4)]


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """ROC AUC = P(pos > neg) + P(pos == neg) / 2 (Mann-Whitney U / (n_pos n_neg)), from average
    ranks over the pooled values (O(n log n)); NaN when either side is empty. Values must be finite."""
    p, q = np.asarray(pos, dtype=float), np.asarray(neg, dtype=float)
    if not len(p) or not len(q):
        return float("nan")
    _, inv, counts = np.unique(np.concatenate([p, q]), return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based mid-rank of each distinct value (ties)
    r_pos = avg_rank[inv[:len(p)]].sum()
    return float((r_pos - len(p) * (len(p) + 1) / 2.0) / (len(p) * len(q)))


def _wilson_bounds(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), p = k/n
    (Wilson 1927); the same as ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``."""
    phat = k / n
    den = 1 + z ** 2 / n
    centre = (phat + z ** 2 / (2 * n)) / den
    half = z * math.sqrt(phat * (1 - phat) / n + z ** 2 / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson(k: int, n: int) -> dict[str, Any]:
    """``{"rate", "ci95", "k", "n"}`` with the Wilson score 95% interval of k successes in n."""
    if n <= 0:
        return {"rate": None, "ci95": None, "k": int(k), "n": 0}
    lo, hi = _wilson_bounds(k, n)
    return {"rate": round(k / n, 4), "ci95": [round(lo, 4), round(hi, 4)], "k": int(k), "n": int(n)}
