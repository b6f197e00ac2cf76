"""Proxy-tuning decode speed (issue 22): sharpset's proxy engine vs the base alone vs the three
models run the reference code's way, same prompts, measured in one run.

Rows (tokens/s = generated tokens, stop token included, over wall seconds):
  base_engine       TransformersEngine over the base alone (continuous batching)
  proxy_engine      ProxyEngine: base + alpha * (expert - antiexpert), three lanes batched together
  proxy_sequential  one prompt at a time, each model with its own HF KV cache, the three forwards one
                    after another per step, no batching (the reference implementation's schedule)
then `proxy_engine/base_engine` and `proxy_engine/proxy_sequential` ratios, and how many of the
proxy engine's greedy outputs equal the sequential loop's (every difference should be an fp32 near-tie:
batched and single-row forwards round differently).

usage:
  python bench/proxy.py --tiny                                        # seconds: tiny random models
  python bench/proxy.py --base gemma3-270m --expert DIR --antiexpert DIR [--n 16] [--max-new-tokens 64]
  python bench/proxy.py --base gemma3-270m --derive 6                 # expert = antiexpert = a 6-layer
                                                                      # derivative (speed only)

Measured (issue 22, eighth session; 2-core AMD EPYC with AVX-512, 2 threads, load ~1.6 from nothing
else; base gemma3-270m, anti-expert its first 12 layers, expert that + LoRA on 64 constraint rows):
`python bench/proxy.py --base gemma3-270m --expert E --antiexpert A --n 16 --max-new-tokens 64 --threads 2`

  base_engine         1024 tokens     6.14 s     166.8 tok/s
  proxy_engine        1024 tokens    15.18 s      67.5 tok/s
  proxy_sequential    1024 tokens   274.41 s       3.7 tok/s
  proxy_engine/base_engine = 0.40; proxy_engine/proxy_sequential = 18.08; greedy identical 16/16

Three models per step cost 2.5x one, not 3x: the batch's fixed costs (scheduling, sampling) are paid once.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from generate import INSTRUCTIONS  # noqa: E402 -- bench/ is not a package


def tiny_triple():
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from conftest import build_chatml_tokenizer, build_tiny_llama

    tok = build_chatml_tokenizer()
    return (build_tiny_llama(len(tok), seed=0), build_tiny_llama(len(tok), seed=1),
            build_tiny_llama(len(tok), seed=2), tok)


def load_triple(args):
    from sharpset.models import load_model
    from sharpset.models.derive import derive

    base, tok = load_model(args.base)
    if args.derive:
        with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmp:
            d = Path(tmp) / f"derived-{args.derive}"
            derive(args.base, args.derive, d)
            small, _ = load_model(str(d))  # weights now in memory: the folder may go
        return base, small, small, tok
    if not (args.expert and args.antiexpert):
        sys.exit("give --expert and --antiexpert, or --derive K, or --tiny")
    return base, load_model(args.expert)[0], load_model(args.antiexpert)[0], tok


def prompts(tok, n: int) -> list[list[int]]:
    from sharpset.models.profiles import ProfileError, encode_prompt, encode_text, profile_for

    try:
        prof = profile_for(tok)
        return [encode_prompt(prof, tok, [{"role": "user", "content": INSTRUCTIONS[i % len(INSTRUCTIONS)]}])
                for i in range(n)]
    except ProfileError:  # a tokenizer without a template (the tiny one has one; kept general)
        return [tok(INSTRUCTIONS[i % len(INSTRUCTIONS)])["input_ids"] for i in range(n)]


@torch.inference_mode()
def sequential(models, alpha, prompt, max_new, stop, width):
    """The reference schedule: one row, three models one after another per step, each with its KV cache."""
    from transformers import DynamicCache

    import inspect

    caches = [DynamicCache() for _ in models]
    kws = ["cache" if "cache" in inspect.signature(m.forward).parameters else "past_key_values"
           for m in models]  # renamed in transformers 5.x (as engine/hf.py reads it)
    ids = torch.tensor([prompt])
    out = []
    for _ in range(max_new):
        b, e, a = (m(input_ids=ids, use_cache=True, **{kw: c}).logits[0, -1, :width].float()
                   for m, c, kw in zip(models, caches, kws))
        t = int((b + alpha * (e - a)).argmax())
        out.append(t)
        if t in stop:
            break
        ids = torch.tensor([[t]])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", default="gemma3-270m", help="base model (embedded name or folder)")
    ap.add_argument("--expert", default="", help="expert model folder (e.g. a `sharpset train` export)")
    ap.add_argument("--antiexpert", default="", help="anti-expert model folder (e.g. `sharpset derive` output)")
    ap.add_argument("--derive", type=int, default=0, metavar="K",
                    help="derive a K-layer model of --base and use it as expert and anti-expert (speed only)")
    ap.add_argument("--tiny", action="store_true", help="tiny random in-process models (a smoke run, seconds)")
    ap.add_argument("--n", type=int, default=16, help="prompts (cycled from bench/generate.py's instructions)")
    ap.add_argument("--batch-size", type=int, default=16, help="rows per batch for the engines")
    ap.add_argument("--max-new-tokens", type=int, default=64, help="generation limit per prompt")
    ap.add_argument("--alpha", type=float, default=1.0, help="steering weight")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from sharpset.engine.base import GenerationRequest, SamplingParams
    from sharpset.engine.hf import TransformersEngine
    from sharpset.engine.proxy import ProxyEngine

    base, expert, anti, tok = tiny_triple() if args.tiny else load_triple(args)
    ps = prompts(tok, args.n)
    reqs = [GenerationRequest(p, SamplingParams(max_new_tokens=args.max_new_tokens)) for p in ps]
    print(f"load avg {os.getloadavg()[0]:.2f}, threads {torch.get_num_threads()}, n={args.n}, "
          f"batch {args.batch_size}, max_new_tokens {args.max_new_tokens}, alpha {args.alpha}")

    rows = {}

    def timed(name, fn):
        """fn() -> per prompt (generated ids without the stop token, tokens generated with it)."""
        t0, c0 = time.perf_counter(), time.process_time()
        outs = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        n_tok = sum(n for _, n in outs)
        rows[name] = n_tok / wall
        print(f"{name:17s} {n_tok:6d} tokens  {wall:7.2f} s  {rows[name]:8.1f} tok/s  (cpu {cpu:.1f} s)")
        return [ids for ids, _ in outs]

    eng = TransformersEngine(base, tok, batch_size=args.batch_size)
    timed("base_engine", lambda: [(r.token_ids, r.n_new_tokens) for r in eng.generate(reqs, progress=False)])
    proxy = ProxyEngine(base, tok, expert=expert, antiexpert=anti, alpha=args.alpha, batch_size=args.batch_size)
    px = timed("proxy_engine", lambda: [(r.token_ids, r.n_new_tokens) for r in proxy.generate(reqs, progress=False)])
    stop = proxy.eos_token_ids

    def seq_all():
        out = []
        for p in ps:
            ids = sequential((base, expert, anti), args.alpha, p, args.max_new_tokens, stop, proxy.vocab)
            out.append((ids[:-1] if ids and ids[-1] in stop else ids, len(ids)))
        return out

    seq = timed("proxy_sequential", seq_all)
    same = sum(a == b for a, b in zip(px, seq))
    print(f"proxy_engine/base_engine = {rows['proxy_engine'] / rows['base_engine']:.2f}; "
          f"proxy_engine/proxy_sequential = {rows['proxy_engine'] / rows['proxy_sequential']:.2f}; "
          f"greedy outputs identical to the sequential loop: {same}/{len(ps)}")


if __name__ == "__main__":
    main()
