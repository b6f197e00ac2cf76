"""sharpset.stats: intervals, tests and verdicts, checked against textbook values and hand-computed cases
(not the implementation's own formulas)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from sharpset.stats import (auc, boot_stat_ci, holm, mcnemar_exact, mean_ci, newcombe_paired, paired_diff_ci,
                            verdict, verdict_text, wilson)


def test_mean_ci_brackets_the_mean_and_is_seeded():
    v = [0, 1, 2] * 34  # not 0/1: the bootstrap
    a, b = mean_ci(v, seed=3), mean_ci(v, seed=3)
    assert a == b and a["n"] == a["n_rows"] == 102 and a["mean"] == 1.0 and a["method"] == "bootstrap"
    assert a["ci95"][0] < 1.0 < a["ci95"][1]
    # roughly the normal interval: half-width ~ 1.96 * sd / sqrt(n) = 1.96 * 0.82 / 10.1 = 0.16
    assert 0.12 < (a["ci95"][1] - a["ci95"][0]) / 2 < 0.2
    assert mean_ci([], seed=0)["n"] == 0


def test_one_value_has_no_interval_never_a_zero_width_one():
    one = mean_ci([None, float("nan"), 2.0], seed=0)
    assert one["mean"] == 2.0 and one["n"] == 1 and one["ci95"] is None and one["note"] == "n too small"
    assert mean_ci([1.0, 1.0, 1.0], seed=0, groups=["q", "q", "q"])["ci95"] is None  # one unit, 3 rows
    c = paired_diff_ci([0], [1], seed=0)
    assert c["ci95"] is None and c["note"] == "n too small" and c["n"] == 1
    assert verdict(c, 1) == "n too small" and verdict_text(c, 1) == "n too small"


def test_wilson_textbook_values_at_small_n():
    # Wilson (1927) score interval; 10/10: lower = n / (n + z^2) = 10 / 13.8415 = 0.7225
    assert mean_ci([1] * 10, seed=0)["ci95"] == [0.7225, 1.0]
    assert mean_ci([1] * 10, seed=0)["method"] == "wilson"
    assert wilson(10, 10)["ci95"] == [0.7225, 1.0]
    assert wilson(0, 10)["ci95"] == [0.0, 0.2775]
    assert mean_ci([0, 1, 1, 0, 1], seed=0)["ci95"] == pytest.approx([0.2307, 0.8824], abs=1e-4)  # 3 of 5
    assert wilson(5, 0)["rate"] is None
    from scipy.stats import binomtest

    for k, n in ((0, 7), (3, 7), (12, 40), (40, 40)):
        ref = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson(k, n)["ci95"] == pytest.approx([ref.low, ref.high], abs=1e-4)


def test_mcnemar_exact_textbook_values():
    # 4 fixed / 0 broken: two-sided exact p = 2 * 0.5^4 = 0.125 -- not an effect at alpha 0.05
    assert mcnemar_exact(4, 0) == pytest.approx(0.125)
    # Fagerland, Lydersen & Laake (2017) ch. 8, Cavo et al. (2012): 6 vs 16 discordant, P = 0.052479
    assert mcnemar_exact(6, 16) == pytest.approx(0.052479, abs=1e-6)
    assert mcnemar_exact(0, 0) == 1.0


def test_newcombe_paired_matches_the_textbook():
    # same table (59, 6 / 16, 80): Newcombe square-and-add -0.0621 (95% CI -0.1186 to -0.0046) for p1+ - p+1.
    # Here A = the column variable: n11 = 59, A=1 B=0 = 16, A=0 B=1 = 6, n00 = 80 -> p_B - p_A = p1+ - p+1
    lo, hi = newcombe_paired(59, 16, 6, 80)
    assert (round(lo, 4), round(hi, 4)) == (-0.1186, -0.0046)
    lo2, hi2 = newcombe_paired(59, 6, 16, 80)  # the other way round: the interval flips sign
    assert (lo2, hi2) == pytest.approx((-hi, -lo))


def test_four_fixed_none_broken_at_n10_is_not_better():
    a, b = [0] * 10, [1] * 4 + [0] * 6
    c = paired_diff_ci(a, b, seed=0)
    assert c["method"] == "mcnemar-exact/newcombe" and c["p"] == pytest.approx(0.125)
    assert (c["fixed"], c["broken"], c["same"], c["n"]) == (4, 0, 6, 10)
    assert verdict(c, 1) == "null" and verdict_text(c, 1).startswith("unclear (interval excludes 0, p = 0.125)")
    # the bootstrap called this "improved" before (issue 21): every resample of four +1s and six 0s is >= 0
    # 12 fixed / 0 broken at n = 20: p = 2 * 0.5^12 = 0.00049 -> better, and worse for a lower-is-better metric
    c = paired_diff_ci([0] * 20, [1] * 12 + [0] * 8, seed=0)
    assert c["p"] == pytest.approx(2 * 0.5 ** 12) and c["ci95"][0] > 0
    assert verdict(c, 1) == "better" and verdict(c, -1) == "worse" and verdict(c, 0) == "up"
    assert verdict_text(c, 1) == "better"
    assert verdict(None, 1) == "no-data" and verdict(paired_diff_ci([None], [1], 0), 1) == "no-data"


def test_no_change_at_all_still_has_an_interval():
    c = paired_diff_ci([1] * 10, [1] * 10, seed=0)  # 10 both right: Newcombe with phi = 0 -> +-(1 - 0.7225)
    assert c["ci95"] == pytest.approx([-0.2775, 0.2775], abs=1e-4) and c["p"] == 1.0
    assert verdict_text(c, 1) == "no effect larger than 0.278"
    big = paired_diff_ci([0] * 40, [0] * 40, seed=0)  # above the small-n threshold: +- Wilson upper of 0/40
    assert big["ci95"] == pytest.approx([-wilson(0, 40)["ci95"][1], wilson(0, 40)["ci95"][1]])


def test_paired_diff_counts_fixed_and_broken():
    a = [0, 0, 1, 1, 0, 1, None]
    b = [1, 0, 1, 0, 1, 1, 1]
    r = paired_diff_ci(a, b, seed=0)
    assert r["n"] == r["n_rows"] == 6  # the pair with a None is left out
    assert (r["fixed"], r["broken"], r["same"]) == (2, 1, 3)
    assert r["a"] == pytest.approx(0.5) and r["b"] == pytest.approx(4 / 6, abs=1e-4)
    assert r["diff"] == pytest.approx(1 / 6, abs=1e-4)
    assert r["p"] == pytest.approx(1.0)  # 2 vs 1 discordant: binomial two-sided p = 1
    with pytest.raises(ValueError, match="line up"):
        paired_diff_ci([1], [1, 2], seed=0)
    with pytest.raises(ValueError, match="one per pair"):
        paired_diff_ci([1, 0], [1, 1], seed=0, groups=["a"])


def test_paired_interval_is_narrower_than_unpaired_when_items_correlate():
    rng = np.random.default_rng(0)
    item = rng.normal(size=200)
    a = item + rng.normal(scale=0.1, size=200)
    b = item + 0.05 + rng.normal(scale=0.1, size=200)
    paired = paired_diff_ci(a.tolist(), b.tolist(), seed=0)
    wa = mean_ci(a.tolist(), 0)
    unpaired_width = (wa["ci95"][1] - wa["ci95"][0])  # each mean's own interval is ~10x wider
    assert paired["ci95"][1] - paired["ci95"][0] < unpaired_width / 3
    assert paired["ci95"][0] > 0 and paired["p"] < 0.01 and verdict(paired, 1) == "better"


def test_cluster_bootstrap_by_hand():
    # unit A = three rows of 1, unit B = one row of 0. Resampling 2 units: {A, A} -> 1, {A, B} -> 3/4 (row mean),
    # {B, B} -> 0 with chances 1/4, 1/2, 1/4, so the 2.5th and 97.5th percentiles are 0 and 1.
    r = mean_ci([1, 1, 1, 0], seed=0, groups=["A", "A", "A", "B"])
    assert (r["mean"], r["n"], r["n_rows"], r["method"]) == (0.75, 2, 4, "cluster bootstrap")
    assert r["ci95"] == [0.0, 1.0]
    # 11 identical copies of each of 40 questions count once: the same interval as the 40 question values
    rng = np.random.default_rng(5)
    q = rng.normal(size=40)
    rows = np.repeat(q, 11)
    clustered = mean_ci(rows.tolist(), seed=7, groups=np.repeat(np.arange(40), 11).tolist())
    assert clustered["ci95"] == mean_ci(q.tolist(), seed=7)["ci95"] and (clustered["n"], clustered["n_rows"]) == (40, 440)
    naive = mean_ci(rows.tolist(), seed=7)
    ratio = (clustered["ci95"][1] - clustered["ci95"][0]) / (naive["ci95"][1] - naive["ci95"][0])
    assert 2.6 < ratio < 4.2  # ~sqrt(11) = 3.3 wider
    # paired, unit totals D = (2, 1, 1): the 8 sign patterns give |T| = 4, 2, 2, 0, 0, 2, 2, 4 -> p = 2/8
    c = paired_diff_ci([0, 0, 0, 0], [1, 1, 1, 1], seed=0, groups=["u", "u", "v", "w"])
    assert (c["n"], c["n_rows"], c["p"]) == (3, 4, 0.25) and c["method"].startswith("cluster bootstrap")
    # one row per unit named explicitly = the default
    d = paired_diff_ci([0.1, 0.5, 0.2], [0.4, 0.5, 0.9], seed=1, groups=["x", "y", "z"])
    assert d == paired_diff_ci([0.1, 0.5, 0.2], [0.4, 0.5, 0.9], seed=1)


def test_weights_make_a_weighted_mean():
    # suite A: rows 1, 1 (weight 1/2 each); suite B: one row 0 (weight 1) -> mean of suite means = 0.5
    r = mean_ci([1, 1, 0], seed=0, weights=[0.5, 0.5, 1.0])
    assert r["mean"] == 0.5 and r["method"].endswith("(weighted)")
    c = paired_diff_ci([0, 0, 0], [1, 1, 0], seed=0, weights=[0.5, 0.5, 1.0])
    assert c["diff"] == 0.5 and c["b"] == 0.5 and c["fixed"] == 2


def test_minimum_detectable_effect():
    from scipy.stats import norm

    d = np.array([1.0, -1.0] * 50) + 0.0
    c = paired_diff_ci(np.zeros(100).tolist(), d.tolist(), seed=0)
    want = (norm.ppf(0.975) + norm.ppf(0.8)) * np.std(d, ddof=1) / math.sqrt(100)
    assert c["mde"] == pytest.approx(want, abs=1e-4)
    # 0/1 at n = 10, nothing changed: an effect delta needs delta * n discordant pairs, and
    # delta = 2.80 * sqrt(delta / n) -> delta = 2.80^2 / n = 0.785
    assert paired_diff_ci([1] * 10, [1] * 10, seed=0)["mde"] == pytest.approx(0.785, abs=1e-3)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # 0.6 x 2 caps at 1; 0.7 x 1 < 1 but monotone
    assert holm([]) == []


def test_auc_matches_the_pairwise_definition():
    rng = np.random.default_rng(1)
    pos = rng.integers(0, 5, 40).astype(float)
    neg = rng.integers(0, 5, 30).astype(float)  # many ties
    pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auc(pos, neg) == pytest.approx(pairwise)
    assert auc([2, 3], [0, 1]) == 1.0 and auc([0, 1], [2, 3]) == 0.0 and auc([1], [1]) == 0.5
    assert math.isnan(auc([], [1]))
    from sharpset import judge_check

    assert judge_check.auc is auc  # one AUC


def test_boot_stat():
    ci = boot_stat_ci(list(range(100)), lambda xs: float(np.mean(xs)), seed=0)
    assert ci[0] < 49.5 < ci[1]


def _coverage_module():
    path = Path(__file__).resolve().parents[1] / "experiments" / "cluster_coverage.py"
    spec = importlib.util.spec_from_file_location("cluster_coverage", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cluster_bootstrap_keeps_nominal_coverage_where_rows_do_not():
    """experiments/cluster_coverage.py with fewer draws: 40 questions x 11 perfectly correlated rows,
    true effect 0. The row bootstrap covers 0 in under half the draws; the cluster one near 95%."""
    res = _coverage_module().simulate(draws=150, questions=40, rows=11, seed=1, n_boot=500)
    assert res["cluster"]["coverage"] >= 0.9 and res["cluster"]["false_verdict"] <= 0.08
    assert res["row"]["coverage"] <= 0.7 and res["row"]["false_verdict"] >= 0.3


def test_interval_and_test_disagreeing_reads_unclear_not_an_effect():
    from sharpset.stats import verdict, verdict_text

    c = {"diff": -0.089, "ci95": [-0.167, -0.022], "n": 10, "p": 0.125}
    assert verdict(c, +1) == "null"
    assert verdict_text(c, +1).startswith("unclear (interval excludes 0, p = 0.125)")
    assert verdict_text({"diff": 0.0, "ci95": [-0.2, 0.2], "n": 10, "p": 1.0}, +1) == "no effect larger than 0.2"


def test_planned_mde_is_the_mde_a_comparison_reports():
    """The audit sizes its evaluation by planned_n (issue 23): the planned MDE at a discordant share is
    what paired_diff_ci reports for data with that share, and planned_n is the fewest units reaching it."""
    from sharpset.stats import paired_diff_ci, planned_mde, planned_n

    a, b = [0] * 15 + [1] * 15 + [0] * 70, [1] * 15 + [0] * 15 + [0] * 70  # 30 of 100 pairs discordant
    assert paired_diff_ci(a, b, seed=0)["mde"] == round(planned_mde(100, 0.3), 4)
    n = planned_n(0.2, 0.3)
    assert planned_mde(n, 0.3) <= 0.2 < planned_mde(n - 1, 0.3) and n == 59
    assert planned_mde(8, 0.3) == pytest.approx(7.849 / 8, abs=1e-3)  # the floor: 8 items detect nothing below 0.98
    assert planned_mde(1, 0.3) is None
