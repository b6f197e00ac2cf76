"""Coverage of the row bootstrap vs the cluster bootstrap when rows of a question move together (issue 21).

Constructed data with a known answer: Q questions, each asked in R wrapper families (the invariance
suite: 11 families per question). Per question a difficulty p_q ~ Beta(2, 2); the start model and the
tuned model each answer the question plainly right with probability p_q, independently -- the two
models are the same distribution, so the true paired effect is **zero**. Every one of the question's
R rows copies the model's plain answer (``--flip 0``: perfectly correlated rows, the invariance
metrics that hang on the plain answer), or copies it and is flipped with probability ``--flip`` per row
(strongly correlated rows).

Per draw, :func:`sharpset.stats.paired_diff_ci` is run twice on the same Q x R rows: with each row its
own unit (the row bootstrap the suites used before issue 21) and grouped by question (the cluster
bootstrap). Printed: the share of draws whose 95% interval contains 0 (coverage; nominal 0.95), the
share called better/worse (interval excludes 0 and p < 0.05; nominal <= 0.05), and the mean width.

Run: PYTHONPATH=src python experiments/cluster_coverage.py [--draws 1000] [--questions 40] [--rows 11]
[--flip 0.0] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def simulate(draws: int, questions: int = 40, rows: int = 11, flip: float = 0.0, seed: int = 0,
             n_boot: int = 1000) -> dict[str, dict[str, float]]:
    """``{"row": {...}, "cluster": {...}}``: coverage, false-verdict rate and mean width of the 95%
    interval of the paired difference over ``draws`` constructed data sets with a true effect of 0."""
    from sharpset.stats import paired_diff_ci, verdict

    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(questions), rows).tolist()
    tally = {k: {"covered": 0, "false_verdict": 0, "width": 0.0} for k in ("row", "cluster")}
    for i in range(draws):
        p = rng.beta(2, 2, questions)
        a_q = (rng.random(questions) < p).astype(float)
        b_q = (rng.random(questions) < p).astype(float)
        a = np.repeat(a_q, rows)
        b = np.repeat(b_q, rows)
        if flip:
            a = np.where(rng.random(a.size) < flip, 1 - a, a)
            b = np.where(rng.random(b.size) < flip, 1 - b, b)
        for kind, g in (("row", None), ("cluster", groups)):
            c = paired_diff_ci(a.tolist(), b.tolist(), seed=i, n_boot=n_boot, groups=g)
            lo, hi = c["ci95"]
            t = tally[kind]
            t["covered"] += lo <= 0 <= hi
            t["false_verdict"] += verdict(c, 1) in ("better", "worse")
            t["width"] += hi - lo
    return {k: {"coverage": v["covered"] / draws, "false_verdict": v["false_verdict"] / draws,
                "mean_width": v["width"] / draws} for k, v in tally.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=1000, help="constructed data sets (default 1000)")
    ap.add_argument("--questions", type=int, default=40, help="independent questions per data set")
    ap.add_argument("--rows", type=int, default=11, help="rows (wrapper families) per question")
    ap.add_argument("--flip", type=float, default=0.0,
                    help="per-row chance of flipping the question's answer (0: perfectly correlated rows)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    res = simulate(args.draws, args.questions, args.rows, args.flip, args.seed)
    print(f"{args.draws} draws, {args.questions} questions x {args.rows} rows, per-row flip {args.flip}, "
          f"true effect 0 ({time.perf_counter() - t0:.0f} s)")
    print(f"{'resampled':<10} {'coverage':>9} {'false better/worse':>19} {'mean width':>11}")
    for kind, r in res.items():
        print(f"{kind:<10} {r['coverage']:>9.3f} {r['false_verdict']:>19.3f} {r['mean_width']:>11.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
