"""Training memory: the NLL without logits (fused), with logits at the labelled positions, or at every position.

A training step's biggest tensors are the LM head's logits, [batch, positions, vocabulary] in fp32,
their log-softmax and their gradient. gemma3-270m has a 262,144-token vocabulary: at batch 8 one
`sharpset train` reached 21.5 GB and was killed by the OOM killer (issue 14's note). Three ways
(`train.loop.LOGITS`), each trained on the same rows in a fresh process:
  full      logits at every position, log-softmax over them (the old path; the baseline);
  labelled  logits only where a label is predicted (HF ``logits_to_keep`` with a 1-D tensor,
            `losses.logit_positions`): prompt positions get none;
  fused     no logits: the head's input is taken and `losses.linear_token_nll` makes the loss and
            its gradients 512 rows of logits at a time (the default where the head allows).
Printed: each one's peak resident memory (ru_maxrss), tokens/s and first loss, and the ratios.

Rows: the shipped questions with answers of ~60-200 tokens (quickstart-like: the prompt is a short
question, the answer most of the row), LoRA r=16 on all linear layers, fp32, the given batch size.

usage: python bench/train_memory.py [--model gemma3-270m] [--batch-size 4] [--steps 3] [--threads 2]
The last line is `train_memory/full_logits = R` (peak memory, fused over every-position).
Run it alone: at batch 8 the every-position path on gemma3 needs over 20 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENTENCES = ["The answer follows from the definition.", "Many textbooks explain it with a diagram.",
             "A short example makes the idea concrete.", "It helps to check the units first.",
             "Historians still debate some of the details.", "The same rule applies in most cases.",
             "You can verify it with a quick calculation.", "This is why the result surprises people."]


def rows(n: int) -> list[dict]:
    from train import examples  # bench/train.py (this folder is on sys.path when run as a script)

    return examples(n, SENTENCES, (6, 22))


def child(args) -> None:
    import torch

    from sharpset.config import from_mapping
    from sharpset.train import TrainConfig, build_examples, prepare_model
    from sharpset.train import loop

    torch.set_num_threads(args.threads)
    loop.LOGITS = args.path
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sft.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows(args.batch_size * (args.steps + 1))))
        cfg = from_mapping(TrainConfig, {"model": args.model, "sft": str(data), "batch_size": args.batch_size,
                                         "max_steps": args.steps + 1, "save_every": 0, "lora_dropout": 0.0})
        model, tok, profile, ref = prepare_model(cfg, lambda m: None)
        ex, _ = build_examples(cfg, profile, tok, lambda m: None)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        loop.train_loop(cfg, model, ref, ex, cfg.parts(), Path(tmp), pad, lambda m: None, stop_after=1)  # warm-up
        t0 = time.perf_counter()
        out = loop.train_loop(cfg, model, ref, ex, cfg.parts(), Path(tmp) / "b", pad, lambda m: None,
                              stop_after=args.steps)
        dt = time.perf_counter() - t0
        curve = [json.loads(x) for x in (Path(tmp) / "b" / "losses.jsonl").read_text().splitlines()]
    print(json.dumps({"path": args.path, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                      "tokens_per_s": out["tokens_this_call"] / dt, "first_loss": curve[0]["loss"],
                      "rows_tokens": sum(len(e["ids"]) for e in ex[:args.batch_size])}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--path", choices=["fused", "labelled", "full"], help=argparse.SUPPRESS)  # the child's side
    args = ap.parse_args()
    if args.path:
        return child(args)
    res = {}
    for path in ("full", "labelled", "fused"):
        cmd = [sys.executable, __file__, "--path", path, "--model", args.model, "--batch-size", str(args.batch_size),
               "--steps", str(args.steps), "--threads", str(args.threads)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
        if r.returncode:
            print(f"{path}: failed (rc {r.returncode}; -9 is the OOM killer)\n{r.stderr[-2000:]}")
            sys.exit(1)
        res[path] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{path:9s} peak RSS {res[path]['peak_rss_gb']:.2f} GB  {res[path]['tokens_per_s']:.0f} tok/s  "
              f"first loss {res[path]['first_loss']:.6f}")
    f = res["full"]
    same = all(abs(r["first_loss"] - f["first_loss"]) <= 1e-4 * abs(f["first_loss"]) for r in res.values())
    print(f"{args.model}, batch {args.batch_size}, {args.steps} steps after a warm-up, {args.threads} threads; "
          f"{f['rows_tokens']} tokens in the first batch; same first loss on all three: {same}")
    for path in ("labelled", "fused"):
        print(f"train_memory/{path}: peak memory x{res[path]['peak_rss_gb'] / f['peak_rss_gb']:.2f}, "
              f"tokens/s x{res[path]['tokens_per_s'] / f['tokens_per_s']:.2f} (vs full)")
    print(f"train_memory/full_logits = {res['fused']['peak_rss_gb'] / f['peak_rss_gb']:.2f}")


if __name__ == "__main__":
    main()
