"""Benchmark: the cost of `curate --strategy less` (issue 25, item 5): datastore build time per 100
pool rows, and selection time (a target's features + scoring the pool).

Runs LESS's own pieces (sharpset.stages.curate.less) one after another in a temporary folder and
times each: the LoRA warm-up, the pool's features (every row x every warm-up checkpoint: a LoRA
gradient, Adam-preconditioned, projected by trak's projector in chunks), the target's features
(plain gradients, same projection) and the scoring (checkpoint-weighted cosines, max over target
rows, top n).

    python bench/less.py --tiny                                   # seconds: a tiny random model
    python bench/less.py --rows 100                               # SmolLM2-135M on 100 shipped rows
    python bench/less.py --rows 100 --projector trak              # the same with the reference projector
    python bench/less.py --pool runs/quickstart-x/tag --rows 200 --target t.jsonl --selector gemma3-270m
    python bench/less.py --projector-bench                        # ~1 min: trak vs torch per chunk, no model
    python bench/less.py --projector-bench --grad-dim 921600      # SmolLM2-135M's LoRA r 8 dims (~4 min)

The projection is the datastore's bottleneck on a CPU (issue 25): trak's ``BasicProjector``
regenerates the whole grad_dim x proj_dim matrix for every chunk, one float draw per entry;
``--projector-bench`` times one chunk (chunk_rows x checkpoints random rows) through each projector
on the same shapes in the same run, and their ratio. Both costs grow linearly in grad_dim.

Default pool: the shipped knowledge dev split as SFT rows (short answers: a lower bound on the cost
per row; a Magpie pool's longer answers cost more per forward/backward). Default target: 4 rows of
the pool. Say which pool a reported number used, and the machine (2 shared cores here).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

SMOL_GRAD_DIM = 921_600  # SmolLM2-135M, LoRA r 8 on q,k,v,o: 30 layers x 8 x (2 x 1152 + 2 x 768)

def tiny_model(folder: Path) -> str:
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from conftest import build_chatml_tokenizer, build_tiny_llama

    tok = build_chatml_tokenizer()
    build_tiny_llama(len(tok)).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return str(folder)


def projector_bench(args: argparse.Namespace) -> None:
    """Seconds per projected chunk, trak vs torch, on the same random rows and shapes (issue 25)."""
    import torch

    from sharpset.stages.curate import CurateConfig
    from sharpset.stages.curate.less import projector

    rows = args.chunk_rows * args.warmup_epochs
    grads = torch.randn(rows, args.grad_dim, generator=torch.Generator().manual_seed(0))
    print(f"LESS projector bench: one chunk = {rows} rows ({args.chunk_rows} chunk rows x {args.warmup_epochs} "
          f"checkpoints) x grad_dim {args.grad_dim:,} -> proj_dim {args.proj_dim}, best of {args.repeats}, "
          f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    secs = {}
    for name in ("trak", "torch"):
        cfg = CurateConfig(input="-", strategy="less", proj_dim=args.proj_dim, projector=name)
        proj = projector(args.grad_dim, cfg)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            proj.project(grads, model_id=0)
            times.append(time.perf_counter() - t0)
        secs[name] = min(times)
        print(f"  {name:5s}: {secs[name]:.2f} s per chunk = {args.grad_dim * args.proj_dim / secs[name] / 1e6:.0f}M "
              f"matrix entries/s; x {SMOL_GRAD_DIM / args.grad_dim:.1f} at SmolLM2-135M's grad_dim "
              f"{SMOL_GRAD_DIM:,}: ~{secs[name] * SMOL_GRAD_DIM / args.grad_dim:.0f} s per chunk")
    print(f"  ratio trak / torch: {secs['trak'] / secs['torch']:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selector", default="smollm2-135m-instruct", help="selector model (embedded name or folder)")
    ap.add_argument("--pool", default="", help="SFT pool: file, folder or run folder (default: shipped knowledge rows)")
    ap.add_argument("--rows", type=int, default=100, help="pool rows to featurise (the first N by id)")
    ap.add_argument("--target", default="", help="target rows (default: 4 rows of the pool)")
    ap.add_argument("--n", type=int, default=16, help="rows to select")
    ap.add_argument("--proj-dim", type=int, default=8192)
    ap.add_argument("--chunk-rows", type=int, default=32)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--warmup-epochs", type=int, default=4)
    ap.add_argument("--projector", default="torch", choices=["torch", "trak"], help="who draws the projection")
    ap.add_argument("--tiny", action="store_true", help="a tiny random in-process model and 40 made-up rows (smoke run)")
    ap.add_argument("--projector-bench", action="store_true",
                    help="no model: time one chunk (chunk-rows x warmup-epochs random rows) through trak and torch")
    ap.add_argument("--grad-dim", type=int, default=100_000, help="--projector-bench: gradient dims per row")
    ap.add_argument("--repeats", type=int, default=1, help="--projector-bench: timed calls per projector (best kept)")
    args = ap.parse_args()
    if args.projector_bench:
        projector_bench(args)
        return

    import torch

    from sharpset.dataio import read_records, write_records
    from sharpset.stages.curate import CurateConfig, canonical_order
    from sharpset.stages.curate.less import (featurize, groups_of, load_selector, projector, read_features,
                                             score_pool, Datastore)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.tiny:
            args.selector = tiny_model(tmp / "tiny")
            words = "the tilt of the axis causes seasons leaves fall rain sings softly use reversed".split()
            rows = [{"messages": [{"role": "user", "content": " ".join(words[i % 7:i % 7 + 5])},
                                  {"role": "assistant", "content": " ".join(words[i % 5:i % 5 + 3 + i % 9])}]}
                    for i in range(40)]
            args.rows, args.proj_dim = min(args.rows, 40), min(args.proj_dim, 512)
        elif args.pool:
            rows = read_records(args.pool, "sft").rows
        else:
            from sharpset.pipelines.sweep import knowledge_rows

            rows = knowledge_rows()
        rows = canonical_order(rows)[: args.rows]
        target = str(tmp / "target.jsonl")
        if args.target:
            target = args.target
        else:
            write_records([{"messages": r["messages"]} for r in rows[:4]], target)
        cfg = CurateConfig(input="-", strategy="less", target=target, selector=args.selector, n=args.n,
                           proj_dim=args.proj_dim, chunk_rows=args.chunk_rows, selector_lora_r=args.lora_r,
                           warmup_epochs=args.warmup_epochs, projector=args.projector)
        say = lambda m: None  # noqa: E731 -- the bench prints its own lines
        print(f"LESS cost: selector {args.selector}, {len(rows)} pool rows, proj_dim {cfg.proj_dim}, "
              f"chunk_rows {cfg.chunk_rows}, projector {cfg.projector}, LoRA r {cfg.selector_lora_r} on "
              f"{','.join(cfg.selector_modules)}, "
              f"{cfg.warmup_epochs} checkpoints, torch threads {torch.get_num_threads()}, "
              f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")

        t0 = time.perf_counter()
        sel = load_selector(cfg, tmp / "ds", rows, say)
        t_warm = time.perf_counter() - t0
        pool, skipped = sel.examples(rows)
        print(f"  warm-up: {len(sel.warmup_ids)} rows x {cfg.warmup_epochs} epochs in {t_warm:.1f} s "
              f"(gradient dims {sel.grad_dim:,})")

        t0 = time.perf_counter()
        proj = projector(sel.grad_dim, cfg)
        index = featurize(sel, pool, "adam", tmp / "ds", cfg.chunk_rows, proj, say)
        t_pool = time.perf_counter() - t0
        print(f"  datastore: {len(pool)} rows ({len(skipped)} too long) in {t_pool:.1f} s = "
              f"{100 * t_pool / max(len(pool), 1):.1f} s per 100 pool rows (all {cfg.warmup_epochs} checkpoints)")

        t0 = time.perf_counter()
        t_rows, _ = sel.examples(read_records(target, "sft").rows)
        t_index = featurize(sel, t_rows, "sgd", tmp / "target", cfg.chunk_rows, proj, say)
        t_feats = torch.cat([f for _, f in read_features(tmp / "target", t_index)])
        t_target = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = Datastore(tmp / "ds", "-", {"chunks": index})
        _, groups = groups_of(t_rows, "")
        ids, scores, _ = score_pool(ds, t_feats, [c.weight for c in sel.checkpoints], groups)
        top = sorted(range(len(ids)), key=lambda j: -scores[j])[: cfg.n]
        t_score = time.perf_counter() - t0
        print(f"  selection: target features ({len(t_rows)} rows) {t_target:.1f} s + scoring and top {len(top)} "
              f"{t_score:.3f} s = {t_target + t_score:.1f} s")


if __name__ == "__main__":
    main()
