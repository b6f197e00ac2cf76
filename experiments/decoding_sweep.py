"""Screen response-decoding settings for Magpie synthesis on the embedded SmolLM2 (issue 13).

Takes the first N clean instructions of a finished-or-running ``sharpset synth`` run folder (its
sample log; the same cleaner and duplicate rule as synth), and generates their responses exactly as
synth does (same rendered prompt, stop tokens/strings, max tokens and per-row seed) under each
setting in SETTINGS. Reports per setting: loop rate (degeneration.is_loop), truncation rate (hit the
token limit), clean-row rate (not empty, not a loop, complete, not a refusal -- the health gates),
mean answer tokens and time. Writes every response to OUT/<setting>.jsonl for reading.

The chosen defaults are then checked end to end with ``sharpset synth --n 200`` (the figures in the
report come from those runs, not from this screen).

Run: OMP_NUM_THREADS=1 PYTHONPATH=src python experiments/decoding_sweep.py RUN_DIR --n 40 --out DIR

Result (embedded smollm2-135m-instruct, the first 40 clean instructions of `sharpset synth --n 200`
with the old defaults; one CPU thread on a shared 2-core machine, so the times mean little):

    setting               n   loop  trunc  clean  tokens
    greedy (old default) 40   0.48   0.55   0.35     292   (from the synth run itself: experiments/synth_health.py)
    greedy_rp1.1         40   0.03   0.20   0.80     235
    greedy_rp1.2         40   0.00   0.20   0.80     197
    greedy_nr6           40   0.00   0.33   0.60     256

Before the engine exempted stop tokens from the penalty, rp 1.1 gave loop 0.05 / trunc 0.23 / clean
0.78 and rp 1.2 loop 0.00 / trunc 0.68 / clean 0.33: the end-of-turn token, present in every chat
prompt, was being penalised. 1.1 was chosen over 1.2 (same clean rate): read side by side, 1.2's
answers drift more in wording (forced synonyms, invented specifics).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

SETTINGS = {
    "greedy": {},
    "greedy_rp1.1": {"repetition_penalty": 1.1},
    "greedy_rp1.2": {"repetition_penalty": 1.2},
    "greedy_nr6": {"no_repeat_ngram_size": 6},
    "greedy_rp1.1_nr6": {"repetition_penalty": 1.1, "no_repeat_ngram_size": 6},
    "t0.7_rp1.1": {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1},
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--out", required=True)
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS))
    ap.add_argument("--max-tokens", type=int, default=384)
    args = ap.parse_args(argv)

    import torch

    from sharpset.engine import GenerationRequest, SamplingParams, get_engine
    from sharpset.models import load_model
    from sharpset.models.profiles import encode_prompt, profile_for, stop_token_ids
    from sharpset.models.registry import chat_family
    from sharpset.run import derive_seed
    from sharpset.stages.synth import SynthConfig, _norm, clean_instruction
    from sharpset.text.degeneration import health

    torch.set_num_threads(1)
    cfg = SynthConfig()
    model, tok = load_model(cfg.model, log=lambda m: print(m, file=sys.stderr))
    profile = profile_for(tok, chat_family(cfg.model))
    log = {}
    for line in open(Path(args.run_dir) / "samples.partial.jsonl", encoding="utf-8"):
        r = json.loads(line)
        log[r["key"]] = r
    picked, seen = [], set()
    for i in range(cfg.n):
        s = log.get(f"inst:{i}:0")
        if s is None:
            break
        if clean_instruction(s["text"], s["finish_reason"], profile, cfg.min_instruction_words) or _norm(s["text"]) in seen:
            continue
        seen.add(_norm(s["text"]))
        picked.append((i, s["text"].strip()))
        if len(picked) == args.n:
            break
    print(f"{len(picked)} clean instructions from {args.run_dir}", file=sys.stderr)
    engine = get_engine("transformers", model=model, tokenizer=tok, batch_size=cfg.batch_size)
    stops = tuple(stop_token_ids(profile, tok))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'setting':<20}{'n':>4}{'loop':>7}{'trunc':>7}{'clean':>7}{'tokens':>8}{'s':>7}")
    for name in args.settings:
        extra = SETTINGS[name]
        reqs = []
        for i, ins in picked:
            seed = derive_seed(derive_seed(cfg.seed, "synth", str(i)), "response", "0")
            reqs.append(GenerationRequest(encode_prompt(profile, tok, [{"role": "user", "content": ins}]),
                                          SamplingParams(max_new_tokens=args.max_tokens, stop_token_ids=stops,
                                                         stop_strings=tuple(profile.stop_strings), seed=seed, **extra)))
        t0 = time.perf_counter()
        res = engine.generate(reqs, progress=False)
        dt = time.perf_counter() - t0
        rows = []
        for (i, ins), r in zip(picked, res):
            text = r.text.strip()
            h = health(text, prompt=ins, truncated=r.truncated)
            clean = bool(text) and not h["loop"] and h["complete"] and not h["refusal"]
            rows.append({"attempt": i, "instruction": ins, "response": text, "tokens": r.n_new_tokens,
                         "truncated": r.truncated, "loop": h["loop"], "clean": clean})
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        n = len(rows)
        print(f"{name:<20}{n:>4}{sum(r['loop'] for r in rows) / n:>7.2f}{sum(r['truncated'] for r in rows) / n:>7.2f}"
              f"{sum(r['clean'] for r in rows) / n:>7.2f}{sum(r['tokens'] for r in rows) / n:>8.0f}{dt:>7.0f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
