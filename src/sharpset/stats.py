"""Intervals and rank statistics: one of each, used by every stage, suite and report.

- :func:`mean_ci`: mean with a bootstrap 95% percentile interval (normal approximation above 5,000
  values, where the percentile bootstrap and the normal interval agree to the rounding shown).
- :func:`paired_diff_ci`: mean of paired differences b_i - a_i over the same items, with a paired
  bootstrap 95% interval (items resampled together, so the interval reflects per-item pairing), and
  the fixed / broken / unchanged counts for 0/1 outcomes.
- :func:`boot_stat_ci`: percentile interval of any statistic of resampled items (AUC, rates).
- :func:`auc`: Mann-Whitney ROC AUC, P(pos > neg) + P(tie)/2.
- :func:`wilson`: Wilson score 95% interval of a proportion (small n, rates near 0 or 1).

All resampling draws come from ``numpy.random.default_rng(seed)``: a seed in, the same interval out.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

Z95 = 1.959963984540054
N_BOOT = 1000
NORMAL_ABOVE = 5000


def _finite(values: Sequence[Any]) -> np.ndarray:
    return np.asarray([float(x) for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))],
                      dtype=np.float64)


def mean_ci(values: Sequence[float | None], seed: int, n_boot: int = N_BOOT) -> dict[str, Any]:
    """``{"mean", "ci95": [lo, hi], "n"}``: mean with a bootstrap 95% percentile interval.

    ``None`` and NaN values are left out (n counts what is left). One value: the interval is that
    value. More than 5,000: mean +- 1.96 s/sqrt(n). Rounded to 4 decimals.
    """
    v = _finite(values)
    if len(v) == 0:
        return {"mean": None, "ci95": None, "n": 0}
    m = float(v.mean())
    if len(v) == 1:
        ci = [m, m]
    elif len(v) > NORMAL_ABOVE:
        h = Z95 * float(v.std(ddof=1)) / math.sqrt(len(v))
        ci = [m - h, m + h]
    else:
        rng = np.random.default_rng(seed)
        boots = v[rng.integers(0, len(v), (n_boot, len(v)))].mean(axis=1)
        ci = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]
    return {"mean": round(m, 4), "ci95": [round(ci[0], 4), round(ci[1], 4)], "n": int(len(v))}


def paired_diff_ci(a: Sequence[float | None], b: Sequence[float | None], seed: int,
                   n_boot: int = N_BOOT) -> dict[str, Any]:
    """Paired comparison of two score lists over the same items (``a[i]`` and ``b[i]`` one item).

    Returns ``{"a", "b", "diff", "ci95", "n", "fixed", "broken", "same"}``: the means of a and b,
    the mean of d_i = b_i - a_i with a bootstrap 95% interval over items (pairs resampled
    together), n = items where both are present. For 0/1 scores ``fixed`` counts items that went
    0 -> 1, ``broken`` 1 -> 0 and ``same`` the rest; for other scores they count d > 0, d < 0, d == 0.
    """
    if len(a) != len(b):
        raise ValueError(f"paired_diff_ci: {len(a)} vs {len(b)} items; pairs must line up")
    keep = [(float(x), float(y)) for x, y in zip(a, b)
            if x is not None and y is not None and not math.isnan(float(x)) and not math.isnan(float(y))]
    if not keep:
        return {"a": None, "b": None, "diff": None, "ci95": None, "n": 0, "fixed": 0, "broken": 0, "same": 0}
    av = np.array([k[0] for k in keep])
    bv = np.array([k[1] for k in keep])
    d = bv - av
    ci = mean_ci(d, seed, n_boot)
    return {"a": round(float(av.mean()), 4), "b": round(float(bv.mean()), 4), "diff": ci["mean"],
            "ci95": ci["ci95"], "n": ci["n"], "fixed": int((d > 0).sum()), "broken": int((d < 0).sum()),
            "same": int((d == 0).sum())}


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
    """Mann-Whitney ROC AUC = P(s_pos > s_neg) + P(s_pos == s_neg) / 2 (NaN if a side is empty)."""
    p, n = np.asarray(pos, float), np.asarray(neg, float)
    if not len(p) or not len(n):
        return float("nan")
    # rank form, O((m+n) log(m+n)): mid-ranks handle ties exactly as the pairwise definition
    allv = np.concatenate([p, n])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r_pos = ranks[: len(p)].sum()
    return float((r_pos - len(p) * (len(p) + 1) / 2) / (len(p) * len(n)))


def wilson(k: int, n: int) -> dict[str, Any]:
    """``{"rate", "ci95", "k", "n"}`` with the Wilson score 95% interval of k successes in n."""
    if n <= 0:
        return {"rate": None, "ci95": None, "k": int(k), "n": 0}
    phat = k / n
    den = 1 + Z95 ** 2 / n
    centre = (phat + Z95 ** 2 / (2 * n)) / den
    half = Z95 * math.sqrt(phat * (1 - phat) / n + Z95 ** 2 / (4 * n * n)) / den
    return {"rate": round(phat, 4), "ci95": [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)],
            "k": int(k), "n": int(n)}
