"""Benchmark: `sharpset constrain` throughput and yield on the embedded aligned model (issue 20, item 5).

Runs the stage itself (the engine batched, every candidate checked, quality_lm tie-breaks) on N
instructions x k candidates and prints rows/min (prompts, each with its k candidates generated
and checked), candidates/min, generated tokens/s, kept rows per 100 attempts (Wilson 95%),
prompt-level pass@1 / pass@k, and the per-type table with the types the model never met.

    python bench/constrain.py                     # 200 prompts x k=8 (the issue's size; long on 2 cores)
    python bench/constrain.py --n 24 --k 4        # a quick look
    python bench/constrain.py --pool runs/synth-x # a Magpie pool (default: the shipped questions)

The default pool is the shipped known-answer question set (sharpset/data/questions.jsonl, its
train split): short factual questions. A Magpie pool (``sharpset synth``) has longer, more varied
instructions; say which one a reported number used.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct", help="aligned model (default: the embedded SmolLM2)")
    ap.add_argument("--pool", default="", help="instructions: a file or run folder (default: shipped questions)")
    ap.add_argument("--n", type=int, default=200, help="prompts")
    ap.add_argument("--k", type=int, default=8, help="candidates per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--tie-break", default="quality_lm", choices=["quality_lm", "shortest"])
    ap.add_argument("--out", default="", help="keep the run folder here (default: a temporary folder)")
    args = ap.parse_args()

    import torch

    from sharpset.config import from_mapping
    from sharpset.dataio import read_records, write_records
    from sharpset.invariance import QUESTIONS, question_split
    from sharpset.run import RunDir
    from sharpset.stages.constrain import STAGE, VERSION, ConstrainConfig, run

    with tempfile.TemporaryDirectory() as tmp:
        pool = args.pool
        if not pool:  # the shipped questions' train split, first n
            rows = [r for r in read_records(QUESTIONS, "sft", require_response=False).rows
                    if question_split(r["id"]) == "train"][: args.n]
            pool = str(Path(tmp) / "pool.jsonl")
            write_records([{"id": r["id"], "messages": r["messages"], "answer": r["answer"]} for r in rows], pool)
        cfg = from_mapping(ConstrainConfig, {"input": pool, "model": args.model, "k": args.k, "limit": args.n,
                                             "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
                                             "tie_break": args.tie_break})
        out = Path(args.out) if args.out else Path(tmp) / "run"
        print(f"model {args.model}; pool {args.pool or 'shipped questions (train split)'}; n={args.n} k={args.k} "
              f"max_new_tokens={args.max_new_tokens} T={cfg.temperature} top_p={cfg.top_p}; "
              f"threads={torch.get_num_threads()}")
        t0 = time.perf_counter()
        m = run(cfg, RunDir.open(out, STAGE, VERSION, cfg, inputs=[pool]), log=print)
        wall = time.perf_counter() - t0
        tokens = 0
        for line in (out / "samples.partial.jsonl").read_text(encoding="utf-8").splitlines():
            s = json.loads(line)
            tokens += s.get("n_new_tokens", 0)
        kr = m["kept_rate"]
        work = 60 * m["attempted"] / m["rows_per_min"] if m["rows_per_min"] else wall  # the stage's own clock
        print(f"\nwall {wall:.1f} s (model load included), {work:.1f} s generating + checking: rows/min "
              f"{m['rows_per_min']} (prompts x {args.k} candidates); candidates/min {60 * m['candidates'] / work:.1f}; "
              f"generated tokens/s {tokens / work:.1f}")
        print(f"kept {m['kept']} of {m['attempted']} prompts = {100 * (kr['rate'] or 0):.1f} per 100 attempts "
              f"[{100 * kr['ci95'][0]:.1f}, {100 * kr['ci95'][1]:.1f}] (Wilson 95%)")
        print(f"prompt pass@1 {m['prompt_pass@1']['rate']} {m['prompt_pass@1']['ci95']}; "
              f"pass@{args.k} {m['prompt_pass@k']['rate']} {m['prompt_pass@k']['ci95']}; "
              f"truncated candidates {m['truncated_candidates']} of {m['candidates']}; "
              f"decided by {m['decided_by']}")
        print(f"types never met: {', '.join(m['types_never_met']) or 'none'}")
        print(f"types with 0 kept rows: {', '.join(m['types_zero_kept']) or 'none'}")
        print(f"types not drawn: {', '.join(m['types_not_drawn']) or 'none'}")


if __name__ == "__main__":
    main()
