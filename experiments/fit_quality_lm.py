"""Fit ``quality_lm`` (sharpset.signals) on the DEV half of the judge fixture; print its constants.

Data: ``sharpset/data/judge_pairs.jsonl`` (experiments/judge_fixture.py), dev half only: 40 good
answers (label 1) and their 200 corruptions (label 0). Each answer is scored once by
``lm_signals(..., composite=False)`` with the scorer model (default: the embedded SmolLM2).

Model: logistic regression (L2, C=1, standardised features: ``sharpset.signals.fit_quality_lm``,
the one fit, which ``judge-check`` also uses for its leave-one-kind-out AUC), one per candidate
feature set in CANDIDATES. The set is chosen by ROC AUC under item-grouped 5-fold cross-validation
on the dev half (a good answer and its corruptions stay in one fold); ties go to the smaller set.
The chosen model is refitted on the whole dev half, its weights are folded back to raw feature
units, and the threshold maximising Youden's J (TPR - FPR) on the dev half is printed with them.
The test half is never read here.

Run: OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/fit_quality_lm.py [--model NAME]
(needs scikit-learn, the ``experiments`` extra, for GroupKFold only)
Paste the printed block into src/sharpset/signals.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

CANDIDATES = [
    ("lm_nll",),
    ("lm_nll", "lm_nll_std"),
    ("lm_nll", "lm_pmi"),
    ("lm_pmi", "ends_clean"),
    ("lm_nll", "lm_nll_std", "lm_pmi"),
    ("lm_nll", "lm_nll_std", "lm_pmi", "ends_clean"),
    ("lm_nll", "lm_nll_std", "lm_ifd", "ends_clean"),
    ("lm_nll", "lm_nll_std", "lm_pmi", "ends_clean", "log_words"),
    ("lm_nll", "lm_nll_std", "lm_pmi", "lm_ifd", "ends_clean", "log_words"),
    ("lm_nll", "lm_nll_std", "lm_pmi", "ends_clean", "log_words", "distinct_2"),
    ("lm_pmi", "ends_clean", "log_words"),
]


def dev_table(model_name: str, batch_size: int):
    from sharpset.judge_check import load_pairs
    from sharpset.models import load_model
    from sharpset.models.profiles import profile_for
    from sharpset.models.registry import chat_family
    from sharpset.signals import features, lm_signals

    pairs = load_pairs(None, "dev")
    texts, labels, groups = [], [], []
    for p in pairs:
        g = (p["instruction"], p["good"])
        if g not in texts:
            texts.append(g), labels.append(1), groups.append(g[1])
        texts.append((p["instruction"], p["bad"])), labels.append(0), groups.append(g[1])
    model, tok = load_model(model_name, log=lambda m: print(m, file=sys.stderr))
    profile = profile_for(tok, chat_family(model_name))
    t0 = time.perf_counter()
    cols = lm_signals(model, tok, profile, [{"instruction": i, "response": r} for i, r in texts],
                      batch_size=batch_size, composite=False)
    print(f"scored {len(texts)} dev answers in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    feats = [features(c) for c in cols]
    keep = [i for i, f in enumerate(feats) if f is not None]
    print(f"LM failed on {len(texts) - len(keep)} answers (left out of the fit)", file=sys.stderr)
    return [feats[i] for i in keep], np.array([labels[i] for i in keep]), [groups[i] for i in keep]


def main(argv=None) -> int:
    from sklearn.model_selection import GroupKFold

    from sharpset.signals import fit_quality_lm
    from sharpset.stats import auc

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    feats, y, groups = dev_table(args.model, args.batch_size)
    gid = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    g = np.array([gid[x] for x in groups])

    def X(cands):
        return np.array([[f[c] for c in cands] for f in feats], dtype=float)

    def fit(cands, idx):
        wd, b = fit_quality_lm([feats[i] for i in idx], list(y[idx]), tuple(cands), C=1.0)
        return np.array([wd[c] for c in cands]), b

    def roc(y_true, score):
        return auc(score[y_true == 1], score[y_true == 0])

    results = []
    for cands in CANDIDATES:
        pred = np.zeros(len(y))
        for tr, te in GroupKFold(n_splits=5).split(X(cands), y, g):
            w, b = fit(cands, tr)
            pred[te] = X(cands)[te] @ w + b  # the AUC needs only the order: no sigmoid
        results.append((roc(y, pred), -len(cands), cands))
        print(f"dev CV AUC {results[-1][0]:.4f}  {', '.join(cands)}")
    cv_auc, _, best = max(results)
    w, b = fit(best, np.arange(len(y)))
    p = 1 / (1 + np.exp(-(X(best) @ w + b)))
    dev_auc = roc(y, p)
    # Youden's J over the observed scores
    cut = max(sorted(set(p)), key=lambda t: np.mean(p[y == 1] >= t) - np.mean(p[y == 0] >= t))
    print(f"\nchosen: {best} (dev CV AUC {cv_auc:.4f}, dev in-sample AUC {dev_auc:.4f}, n={len(y)})")
    print(f"Youden threshold {cut:.4f}: dev TPR {np.mean(p[y == 1] >= cut):.3f}, FPR {np.mean(p[y == 0] >= cut):.3f}")
    print("\n# ---- paste into src/sharpset/signals.py ----")
    print(f"QUALITY_FEATURES: tuple[str, ...] = {tuple(best)!r}")
    print("QUALITY_WEIGHTS: dict[str, float] = {" + ", ".join(f"{c!r}: {v:.6g}" for c, v in zip(best, w)) + "}")
    print(f"QUALITY_BIAS = {b:.6g}")
    print(f"QUALITY_THRESHOLD = {float(cut):.4g}")
    print("QUALITY_FIT = " + json.dumps({"scorer": args.model, "dev_auc": round(dev_auc, 4),
                                          "dev_cv_auc": round(cv_auc, 4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
