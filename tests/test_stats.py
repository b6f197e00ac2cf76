"""sharpset.stats: the one place for intervals and rank statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sharpset.stats import auc, boot_stat_ci, mean_ci, paired_diff_ci, wilson


def test_mean_ci_brackets_the_mean_and_is_seeded():
    v = [0, 1] * 50
    a, b = mean_ci(v, seed=3), mean_ci(v, seed=3)
    assert a == b and a["n"] == 100 and a["mean"] == 0.5
    assert a["ci95"][0] < 0.5 < a["ci95"][1]
    # roughly the normal interval of a proportion: half-width ~ 1.96 * 0.5 / 10 = 0.098
    assert 0.07 < (a["ci95"][1] - a["ci95"][0]) / 2 < 0.13
    assert mean_ci([None, float("nan"), 2.0], seed=0) == {"mean": 2.0, "ci95": [2.0, 2.0], "n": 1}
    assert mean_ci([], seed=0)["n"] == 0


def test_paired_diff_counts_fixed_and_broken():
    a = [0, 0, 1, 1, 0, 1, None]
    b = [1, 0, 1, 0, 1, 1, 1]
    r = paired_diff_ci(a, b, seed=0)
    assert r["n"] == 6  # the pair with a None is left out
    assert (r["fixed"], r["broken"], r["same"]) == (2, 1, 3)
    assert r["a"] == pytest.approx(0.5) and r["b"] == pytest.approx(4 / 6, abs=1e-4)
    assert r["diff"] == pytest.approx(1 / 6, abs=1e-4)
    with pytest.raises(ValueError, match="line up"):
        paired_diff_ci([1], [1, 2], seed=0)


def test_paired_interval_is_narrower_than_unpaired_when_items_correlate():
    rng = np.random.default_rng(0)
    item = rng.normal(size=200)
    a = item + rng.normal(scale=0.1, size=200)
    b = item + 0.05 + rng.normal(scale=0.1, size=200)
    paired = paired_diff_ci(a.tolist(), b.tolist(), seed=0)
    wa, wb = mean_ci(a.tolist(), 0), mean_ci(b.tolist(), 0)
    unpaired_width = (wa["ci95"][1] - wa["ci95"][0])  # each mean's own interval is ~10x wider
    assert paired["ci95"][1] - paired["ci95"][0] < unpaired_width / 3
    assert paired["ci95"][0] > 0  # the small shift is detected because the pairing removes item spread


def test_auc_matches_the_pairwise_definition():
    rng = np.random.default_rng(1)
    pos = rng.integers(0, 5, 40).astype(float)
    neg = rng.integers(0, 5, 30).astype(float)  # many ties
    pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auc(pos, neg) == pytest.approx(pairwise)
    assert auc([2, 3], [0, 1]) == 1.0 and auc([0, 1], [2, 3]) == 0.0 and auc([1], [1]) == 0.5
    assert math.isnan(auc([], [1]))


def test_wilson_and_boot_stat():
    w = wilson(0, 10)
    assert w["rate"] == 0 and w["ci95"][0] == 0 and 0.2 < w["ci95"][1] < 0.35  # Wilson, not [0, 0]
    assert wilson(5, 0)["rate"] is None
    ci = boot_stat_ci(list(range(100)), lambda xs: float(np.mean(xs)), seed=0)
    assert ci[0] < 49.5 < ci[1]
