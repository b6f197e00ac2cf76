"""Diagnosis: do LESS's gradient features tell target-like pool rows from the rest? (issue 25)

A pool where some rows are known to show the target behaviour (e.g. verified-constraint rows mixed
into a Magpie pool) lets one measure, before any training, whether LESS's score ranks them first:
the AUC of the score, positives vs the rest, with a bootstrap 95% interval, and how many of the top
``--top`` rows are positives. Gradients are taken in full dimension (no projection: a JL projection
keeps cosines) for ``--per-class`` rows of each class, at every warm-up checkpoint, and scored as
`curate --strategy less` scores (checkpoint-weighted cosine, max over target rows; also the mean),
under feature variants:

- ``adam``: the paper's pool feature (Adam step with the checkpoint's moments) -- what curate does;
- ``precond``: the gradient divided by Adam's second moment only (no stored momentum);
- ``sgd``: the plain gradient;
each also ``-centred`` (the pool rows' mean feature removed before the cosine). ``mean_dir`` is the
length of the mean unit pool feature (curate's ``pool_mean_direction``: 0 spread, 1 identical).

    python bench/less_separation.py --tiny                     # seconds: tiny random model, made-up labels
    python bench/less_separation.py --pool POOL.jsonl --positives IDS.json --target T.jsonl \
        --warmup-fraction 0.2 --warmup-epochs 4                  # SmolLM2 selector, ~17 min on 2 cores

Measured (issue 25 note, 2 cores): the 543-row pool of 453 Magpie + 90 verified-constraint rows, 8
constraint target rows, 45 + 45 rows: 28 warm-up rows x 2 epochs gave adam AUC 0.16 (mean_dir 0.89),
109 rows x 4 epochs 0.84 (0.72; 15 of the top 16 are constraint rows). The warm-up reuses (and
writes) ``--work``'s ``warmup/`` folder, so a second call with the same settings trains nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("adam", "precond", "sgd")


def features(kind: str, G, st: dict):
    from sharpset.stages.curate.less_selector import adam_direction, second_moment

    if kind == "adam":
        return adam_direction(G, st)
    if kind == "precond":
        return G / (second_moment(G, st).sqrt() + st["eps"])
    return G


def scores(grads: list[tuple], kind: str, centre: bool):
    """(max over target rows, mean over target rows) of the checkpoint-weighted cosine, and the mean
    unit pool feature's length averaged over checkpoints."""
    import torch

    s, lengths = 0, []
    for G, T, st, w in grads:
        F = features(kind, G, st)
        if centre:
            F = F - F.mean(0, keepdim=True)
        F = torch.nn.functional.normalize(F, dim=-1)
        lengths.append(float(F.mean(0).norm()))
        s = s + w * (F @ torch.nn.functional.normalize(T, dim=-1).T)
    return s.max(1).values.tolist(), s.mean(1).tolist(), sum(lengths) / len(lengths)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", help="the candidate pool (SFT rows with ids)")
    ap.add_argument("--positives", help="JSON list of the pool ids that show the target behaviour")
    ap.add_argument("--target", help="the target rows (as curate --target)")
    ap.add_argument("--selector", default="smollm2-135m-instruct")
    ap.add_argument("--per-class", type=int, default=45, help="rows drawn from each class (seeded)")
    ap.add_argument("--top", type=int, default=16)
    ap.add_argument("--warmup-fraction", type=float, default=0.05)
    ap.add_argument("--warmup-min-rows", type=int, default=100)
    ap.add_argument("--warmup-epochs", type=int, default=4)
    ap.add_argument("--warmup-lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="folder for the warm-up checkpoints (default: a temporary one)")
    ap.add_argument("--tiny", action="store_true", help="a tiny random model and made-up labels (a smoke run)")
    args = ap.parse_args(argv)

    import torch

    from sharpset.dataio import read_records
    from sharpset.stages.curate import CurateConfig
    from sharpset.stages.curate.less_selector import load_checkpoint_state, load_selector, row_gradient
    from sharpset.stats import auc, boot_stat_ci

    tmp = tempfile.TemporaryDirectory()
    work = Path(args.work or tmp.name)
    if args.tiny:
        sys.path.insert(0, str(Path(__file__).parent))
        from less import tiny_model

        args.selector = tiny_model(work / "tiny")
        pool = [{"id": f"r{i}", "messages": [{"role": "user", "content": f"Question {i}?"},
                                              {"role": "assistant", "content": ("yes " if i % 2 else "no ") * (3 + i % 5)}]}
                for i in range(24)]
        positive = {r["id"] for i, r in enumerate(pool) if i % 2}
        target = [dict(r, id=f"t{i}") for i, r in enumerate(pool[1:7:2])]
        args.per_class, args.warmup_min_rows, args.warmup_epochs, args.top = 6, 8, 2, 4
    else:
        if not (args.pool and args.positives and args.target):
            ap.error("--pool, --positives and --target are needed (or --tiny)")
        pool = read_records(Path(args.pool)).rows
        positive = set(json.loads(Path(args.positives).read_text()))
        target = read_records(Path(args.target)).rows
    rng = random.Random(args.seed)
    pos = [r for r in pool if r["id"] in positive]
    neg = [r for r in pool if r["id"] not in positive]
    rng.shuffle(pos)
    rng.shuffle(neg)
    sub = pos[:args.per_class] + neg[:args.per_class]
    cfg = CurateConfig(strategy="less", selector=args.selector, warmup_fraction=args.warmup_fraction,
                       warmup_min_rows=args.warmup_min_rows, warmup_epochs=args.warmup_epochs,
                       warmup_lr=args.warmup_lr, seed=args.seed)
    t0 = time.perf_counter()
    sel = load_selector(cfg, work, pool, lambda m: print(m, flush=True))
    t_warm = time.perf_counter() - t0
    ex_sub, _ = sel.examples(sub)
    ex_t, _ = sel.examples(target)
    labels = [e["id"] in positive for e in ex_sub]
    t0 = time.perf_counter()
    grads = []
    for ck in sel.checkpoints:
        st = load_checkpoint_state(sel, ck)
        G = torch.stack([row_gradient(sel, e) for e in ex_sub])
        T = torch.stack([row_gradient(sel, e) for e in ex_t])
        grads.append((G, T, st, ck.weight))
    t_grad = time.perf_counter() - t0
    print(f"selector {args.selector}: warm-up {len(sel.warmup_ids)} rows x {args.warmup_epochs} epochs "
          f"({sel.checkpoints[-1].step} steps, {t_warm:.0f} s); gradients of {len(ex_sub)} pool rows "
          f"({sum(labels)} positive) + {len(ex_t)} target rows x {len(grads)} checkpoints in {t_grad:.0f} s")
    print(f"{'variant':18s} {'AUC (max) [95% CI]':>25s} {'AUC (mean)':>10s} {'top ' + str(args.top):>7s} {'mean_dir':>8s}")
    out = {}
    for kind in VARIANTS:
        for centre in (False, True):
            name = kind + ("-centred" if centre else "")
            s_max, s_mean, mean_dir = scores(grads, kind, centre)

            def a(items):
                return auc([x for x, y in items if y], [x for x, y in items if not y])

            pairs = list(zip(s_max, labels))
            lo, hi = boot_stat_ci(pairs, a, seed=args.seed) or (float("nan"), float("nan"))
            top = sorted(range(len(s_max)), key=lambda i: -s_max[i])[:args.top]
            out[name] = {"auc_max": a(pairs), "auc_max_ci95": [lo, hi], "auc_mean": a(list(zip(s_mean, labels))),
                         "top_positive": sum(labels[i] for i in top), "mean_dir": mean_dir}
            print(f"{name:18s} {out[name]['auc_max']:8.3f} [{lo:.3f}, {hi:.3f}] {out[name]['auc_mean']:10.3f} "
                  f"{out[name]['top_positive']:4d}/{args.top} {mean_dir:8.3f}")
    if args.work:
        (work / "separation.json").write_text(json.dumps({"args": vars(args), "n": len(labels),
                                                           "positive": sum(labels), "variants": out}, indent=1))


if __name__ == "__main__":
    main()
