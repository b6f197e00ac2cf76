"""How close a decode step (and a scoring forward) gets to this machine's limit (issue 24).

Measured in one run, at the bench's thread count:
  bandwidth   STREAM-style copy (b = a) and triad (a = b + s*c) on 256 MB fp32 arrays (far larger
              than any cache); bytes counted as STREAM does (copy 2 x 4 B, triad 3 x 4 B per element)
  peaks       GEMM 2048^3: fp32 (torch), bf16 (oneDNN), int8 -> int32 (torch._int_mm)
  decode      ms per decode step of the transformers engine at batch B and context C, for each lever
              alone: torch linear, oneDNN prepacked (unfused), + fused q/k/v and gate/up (the
              default), and the opt-in bf16 / int8 weights; then the default at several batch sizes.
              All variants decode copies of one prefilled cache, interleaved 4 steps at a time (order
              reversed each round) over --steps x --rounds steps; the median step is reported.
  scoring     one forward of B x T tokens (engine/scoring.py's likelihood pass) on torch linear and
              on the engine's kernels

Roofline of one decode step: bytes = linear weights at their storage precision (fp32 4 B, bf16 2,
int8 1 + a per-channel scale) + the KV cache read (2 x layers x B x kv_heads x head_dim x C x 4 B);
FLOPs = 2 x B x matmul params + attention (4 x layers x heads x head_dim x C x B); floor =
max(bytes / copy bandwidth, FLOPs / that precision's GEMM peak). "% roof" = floor / measured.

2026-12-06, 2 EPYC cores shared with another job (so its GEMM peaks are ~1 core's), SmolLM2 fp32,
batch 16, context 256-328, ms per decode step (% of the floor):
  threads  torch-linear  oneDNN        + fused (default)  bf16 weights  int8 weights
  1        152.6 (34%)   107.6 (49%)   105.7 (50%)        81.8 (28%)    81.6 (20%)
  2        111.4 (41%)    73.3 (62%)    70.2 (65%)        57.1 (40%)    57.4 (26%)
Batch sweep (1 thread, decode steps only): 8 / 16 / 32 / 64 rows -> 109 / 148 / 173 / 187 tok/s; at 2
threads 16 -> 32 rows: 232 -> 284 tok/s. Scoring forward (16 x 256, 1 thread): 82% of the fp32 peak on
torch linear, 94% on the engine's kernels (compute-bound; already near its floor).
Tried and dropped: decode attention as two batched matmuls over the cache views (GQA folded, no K/V
copy) instead of sdpa: same speed in the model (113.8 vs 115.0 ms/step).

2026-12-07, the same class of machine idle (STREAM copy 45.9 GB/s, fp32 peak 186 GFLOP/s at 2 threads),
decode step at batch 16, context 256-328, 2 threads: fp32 default 78.9 ms, bf16 weights 64.0, int8 68.4
(memory floors 16.4 / 10.6 / 7.6 ms). torch.profiler over 20 steps: fp32 = linear 53% (35 ms for 540
MB of weights: 15 GB/s), sdpa 28% (0.64 ms a layer for 7.4 MB of K/V: 11.5 GB/s, 4x its floor), the
~1,000 small ops ~15%; int8 = sdpa 36%, the int8 GEMMs 31%, the quantisation's small ops ~17%. At
these sizes the step is no longer bound by the weights: attention and per-op overhead are the levers
left (a decode attention at the K/V read floor; fused quantisation), not the weights' precision.
Tried and dropped: int8 GEMMs on oneDNN's prepacked u8 x s8 qlinear (onednn.qlinear_pointwise, rows
shifted by 128, zero point 128): 1.7x faster than torch._int_mm per matrix on cold weights at 1 thread
(0.217 vs 0.367 ms, 16 x 576 x 3072), no faster in the model (69.2 vs 68.4 ms/step at 2 threads).

Training step (--train; gemma3-270m LoRA SFT in sharpset train's loop, fp32, batch 4 x ~80 tokens,
the end-of-turn token rows trained beside LoRA), same idle machine, 2 threads, mean of 3 steps:
5.29 s/step (28% of the fp32 peak) with PEFT's trainable-tokens forward, which copies the 262k x 640
embedding/head and forms its whole gradient every step; 2.98 s/step (49%) with train/token_rows.py's
row-wise lookup and losses.linear_token_nll's patched head rows (1.78x; same losses to 6 digits).

usage: python bench/roofline.py [--threads 1] [--batch-size 16] [--context 256] [--steps 24] [--rounds 3]
                                [--train [--train-model gemma3-270m]] [--only-train]
(bench/generate.py --roofline runs the same after its throughput table.)
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time

import torch

VARIANTS = {  # name -> TransformersEngine keyword arguments (each lever alone)
    "torch-linear": dict(linear_kernel="torch"),
    "onednn": dict(fuse_projections=False),
    "onednn+fused (default)": dict(),
    "bf16 weights": dict(weights="bf16"),
    "int8 weights": dict(weights="int8"),
}


def _best(fn, reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bandwidth(mb: int = 256, reps: int = 5) -> dict[str, float]:
    """STREAM copy and triad, GB/s (best of `reps`)."""
    n = mb * 2 ** 20 // 4
    a, b, c = torch.rand(n), torch.rand(n), torch.rand(n)
    copy = _best(lambda: b.copy_(a), reps)
    triad = _best(lambda: torch.add(b, c, alpha=3.0, out=a), reps)
    del a, b, c
    return {"copy": 2 * n * 4 / copy / 1e9, "triad": 3 * n * 4 / triad / 1e9}


def peaks(n: int = 2048, reps: int = 5) -> dict[str, float]:
    """GEMM peaks in GFLOP/s (int8: GOP/s) for the precisions the engine can run."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = {"fp32": 2 * n ** 3 / _best(lambda: a @ b, reps) / 1e9}
    try:
        ab, bb = a.bfloat16(), b.bfloat16()
        out["bf16"] = 2 * n ** 3 / _best(lambda: ab @ bb, reps) / 1e9
    except RuntimeError:
        pass
    try:
        ai, bi = torch.randint(-100, 100, (n, n), dtype=torch.int8), torch.randint(-100, 100, (n, n), dtype=torch.int8)
        out["int8"] = 2 * n ** 3 / _best(lambda: torch._int_mm(ai, bi), reps) / 1e9
    except RuntimeError:
        pass
    return out


def model_shape(model) -> dict:
    cfg = model.config.get_text_config(decoder=True)
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return dict(layers=cfg.num_hidden_layers, heads=heads, kv_heads=getattr(cfg, "num_key_value_heads", heads),
                head_dim=head_dim, matmul_params=sum(m.weight.numel() for m in linears),
                out_channels=sum(m.out_features for m in linears))


def step_cost(shape: dict, batch: int, ctx: float, weights: str | None) -> tuple[float, float]:
    """(bytes read, FLOPs) of one decode step (module docstring)."""
    per = {None: 4, "bf16": 2, "int8": 1}[weights]
    w_bytes = shape["matmul_params"] * per + (shape["out_channels"] * 4 if weights == "int8" else 0)
    kv = 2 * shape["layers"] * batch * shape["kv_heads"] * shape["head_dim"] * ctx * 4
    flops = 2 * batch * shape["matmul_params"] + 4 * shape["layers"] * shape["heads"] * shape["head_dim"] * ctx * batch
    return w_bytes + kv, flops


def _clone(batch, n: int | None = None):
    """A copy of `batch` with `n` rows (its rows repeated or cut: for timing, the values do not matter)."""
    from sharpset.engine.hf import _Batch
    from sharpset.engine.kvcache import _KVCache

    idx = torch.arange(n or len(batch.rows)) % len(batch.rows)
    cache = _KVCache(len(batch.cache.layers), 0)
    for src, dst in zip(batch.cache.layers, cache.layers):
        dst._set(src.k_buf[idx].clone(), src.v_buf[idx].clone(), src.used)
    return _Batch(rows=[batch.rows[i] for i in idx.tolist()], cache=cache, lens=batch.lens[idx].clone(),
                  pending=batch.pending[idx].clone())


def interleaved_ms(engines: dict, batch0, steps: int, rounds: int, chunk: int = 4,
                   sizes: dict | None = None) -> dict[str, float]:
    """Median ms per decode step (forward + greedy argmax) for each engine, all decoding copies of
    `batch0` (`sizes[name]` rows each, default all), interleaved `chunk` steps at a time (order
    reversed every round) so that load from other processes falls on every engine alike."""
    batches = {name: _clone(batch0, (sizes or {}).get(name)) for name in engines}
    times: dict[str, list[float]] = {name: [] for name in engines}
    names = list(engines)
    for r in range(max(1, steps * rounds // chunk)):
        for name in (names if r % 2 == 0 else names[::-1]):
            eng, batch = engines[name], batches[name]
            eng.stats = collections.defaultdict(float)  # generate_iter sets these up; we call the steps directly
            with eng._kernels(), torch.inference_mode():
                for _ in range(chunk):
                    t = time.perf_counter()
                    logits = eng._decode(batch)
                    batch.pending = logits.argmax(-1)
                    times[name].append(time.perf_counter() - t)
    return {name: 1000 * statistics.median(ts) for name, ts in times.items()}


def prefilled(model, tok, prompts: list[list[int]], steps: int):
    """A batch of len(prompts) rows prefilled (engine default kernels), room for `steps` more columns."""
    from sharpset.engine import GenerationRequest, SamplingParams
    from sharpset.engine.hf import TransformersEngine

    eng = TransformersEngine(model, tok, batch_size=len(prompts), strategy="bucket", stop_at_eos=False)
    rows = [eng._make_row(i, GenerationRequest(p, SamplingParams(max_new_tokens=steps + 1), key=str(i)))
            for i, p in enumerate(prompts)]
    eng.stats = collections.defaultdict(float)
    with eng._kernels():
        batch, logits = eng._prefill(rows)
    batch.pending = logits.argmax(-1)
    return batch


def long_prompts(tok, render, instructions, n: int, ctx: int) -> list[list[int]]:
    """n chat prompts of exactly `ctx` tokens (instructions concatenated, then cut)."""
    out = []
    for i in range(n):
        text = " ".join(instructions[(i + j) % len(instructions)] for j in range(40))
        ids = render(tok, text)
        out.append(ids[-ctx:])
    return out


def run(model, tok, render, instructions, *, batch: int, ctx: int, steps: int, rounds: int,
        batches=(8, 16, 32, 64), log=print) -> dict:
    from sharpset.engine.hf import TransformersEngine
    from sharpset.engine.linear import weights_unavailable

    bw = bandwidth()
    pk = peaks()
    log(f"\nroofline (torch threads {torch.get_num_threads()}): STREAM copy {bw['copy']:.1f} GB/s, triad "
        f"{bw['triad']:.1f} GB/s; GEMM 2048^3 peaks: " + ", ".join(f"{k} {v:.0f} G/s" for k, v in pk.items()))
    shape = model_shape(model)
    variants = {}
    for name, kw in VARIANTS.items():
        why = weights_unavailable(kw.get("weights"), model)
        if why is not None:
            log(f"  {name}: skipped ({why})")
            continue
        variants[name] = TransformersEngine(model, tok, batch_size=batch, **kw)
    batch0 = prefilled(model, tok, long_prompts(tok, render, instructions, batch, ctx), steps * rounds)
    got = interleaved_ms(variants, batch0, steps, rounds)
    c = ctx + steps * rounds / 2
    log(f"decode step, batch {batch}, context {ctx}-{ctx + steps * rounds} (median of {steps * rounds} steps each, "
        f"variants interleaved 4 steps at a time):")
    log(f"  {'variant':26s} {'ms/step':>8s} {'vs torch':>8s} {'floor ms':>8s} {'(mem':>6s} {'flop)':>6s} "
        f"{'% roof':>7s} {'G/s':>6s} {'% peak':>7s}")
    base = got.get("torch-linear")
    rows = {}
    for name, ms in got.items():
        weights = VARIANTS[name].get("weights")
        nbytes, flops = step_cost(shape, batch, c, weights)
        peak = pk.get({None: "fp32"}.get(weights, weights), pk["fp32"])
        mem_ms, flop_ms = 1000 * nbytes / (bw["copy"] * 1e9), 1000 * flops / (peak * 1e9)
        floor = max(mem_ms, flop_ms)
        rows[name] = dict(ms=ms, floor=floor, mem_ms=mem_ms, flop_ms=flop_ms)
        log(f"  {name:26s} {ms:8.1f} {(base / ms if base else float('nan')):7.2f}x {floor:8.1f} {mem_ms:6.1f} "
            f"{flop_ms:6.1f} {floor / ms:7.0%} {flops / ms / 1e6:6.1f} {flops / ms / 1e6 / peak:7.0%}")
    # batch size: tokens per second of decode steps alone, default variant (rows of the same cache
    # repeated: a prefill of 64 x 256 tokens would cost more than the whole sweep)
    engines = {b: TransformersEngine(model, tok, batch_size=b) for b in batches}
    per_b = interleaved_ms(engines, batch0, steps, max(1, rounds - 1), sizes={b: b for b in batches})
    log("default variant by batch size (decode steps only; prefill and refills not counted):")
    for b, ms in per_b.items():
        log(f"  batch {b:3d}: {ms:7.1f} ms/step, {1000 * b / ms:7.1f} tok/s")
    best = max(per_b, key=lambda b: per_b[b] and b / per_b[b])
    log(f"  highest decode tok/s at batch {best} (engine default 16: a larger batch also waits longer to refill "
        "and holds more KV memory; see bench/generate.py --batch-size)")
    return dict(bandwidth=bw, peaks=pk, decode=rows, by_batch=per_b)


def scoring(model, tok, render, instructions, *, batch: int = 16, seq: int = 256, rounds: int = 3,
            peak: float | None = None, log=print) -> None:
    """One likelihood forward of batch x seq tokens, torch linear vs the engine's kernels."""
    from sharpset.engine.linear import PrepackedLinears

    ids = torch.tensor(long_prompts(tok, render, instructions, batch, seq))
    shape = model_shape(model)
    flops = 2 * batch * seq * shape["matmul_params"] + 2 * shape["layers"] * shape["heads"] * shape["head_dim"] * seq * seq * batch
    packs = PrepackedLinears(model, batch * seq)

    def fwd():
        with torch.inference_mode():
            model(ids)

    got = {}
    for r in range(rounds):
        for name in (("torch-linear", "onednn+fused") if r % 2 == 0 else ("onednn+fused", "torch-linear")):
            if name == "torch-linear":
                t = _best(fwd, 1)
            else:
                with packs.active():
                    t = _best(fwd, 1)
            got[name] = min(got.get(name, float("inf")), t)
    pk = max(peak or 0.0, peaks()["fp32"])  # best of run(...)'s and now: other processes only lower it
    log(f"scoring forward, {batch} x {seq} tokens ({flops / 1e9:.0f} GFLOP; compute-bound: floor = FLOPs / fp32 peak "
        f"{pk:.0f} GFLOP/s = {1000 * flops / pk / 1e9:.0f} ms):")
    for name, t in got.items():
        log(f"  {name:26s} {1000 * t:8.0f} ms  {flops / t / 1e9:6.1f} GFLOP/s = {flops / t / 1e9 / pk:.0%} of peak, "
            f"{batch * seq / t:7.0f} tok/s")


def training_step(model_name: str = "gemma3-270m", *, batch: int = 4, steps: int = 3, peak: float | None = None,
                  log=print) -> dict:
    """One LoRA SFT optimizer step of `sharpset train` (its own loop, fp32 defaults: LoRA r 16 on
    every linear layer, the head only at labelled positions) against its compute floor.

    Useful FLOPs per step (weights' bytes are read ~3 times a step, milliseconds against seconds of
    compute: the step is compute-bound): body linear layers 2 (forward) + 2 (gradient to the
    activations; frozen weights get none) per parameter per real token; the LM head 2 (logits) + 2
    (gradient to the hidden state, losses._LinearNLL, no recomputation) per parameter per labelled
    token; causal attention 2 + 4 per layer x heads x head_dim x (tokens^2 / 2) per row. LoRA's own
    matrices and the norms are left out (< 1%). Floor = FLOPs / the fp32 GEMM peak."""
    import tempfile
    from pathlib import Path

    from train import examples  # bench/train.py: the shipped questions with answers of varied length

    from sharpset.config import from_mapping
    from sharpset.train import TrainConfig, prepare_model
    from sharpset.train.loop import train_loop
    from sharpset.train.sft import sft_example

    cfg = from_mapping(TrainConfig, {"model": model_name, "sft": "x", "objective": "sft", "lr": 2e-4,
                                     "batch_size": batch, "save_every": 0, "lora_r": 16, "lora_alpha": 32,
                                     "epochs": 1, "warmup_ratio": 0.0})
    model, tok, profile, ref = prepare_model(cfg, lambda m: None)
    exs = [sft_example(r, profile, tok, cfg.max_length) for r in examples(batch * (steps + 1))]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    warm, timed = exs[:batch], exs[batch:]
    with tempfile.TemporaryDirectory() as d:
        train_loop(cfg, model, ref, warm, {"sft"}, Path(d) / "warm", pad, log=lambda m: None, stop_after=1)
        got = train_loop(cfg, model, ref, timed, {"sft"}, Path(d) / "timed", pad, log=lambda m: None,
                         stop_after=steps)
    seconds = got["tokens_this_call"] / got["tokens_per_s_this_call"] / steps
    shape = model_shape(model)
    vocab = model.config.get_text_config(decoder=True).vocab_size
    linears = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "lora_" not in n]
    head = sum(m.weight.numel() for m in linears if m.out_features == vocab)  # (PEFT may wrap it: not by identity)
    body = sum(m.weight.numel() for m in linears if m.out_features != vocab)
    real = sum(len(e["ids"]) for e in timed) / steps
    labelled = sum(sum(1 for t in e["labels"] if t != -100) for e in timed) / steps
    sq = sum(len(e["ids"]) ** 2 for e in timed) / steps
    flops = 4 * body * real + 4 * head * labelled + 6 * shape["layers"] * shape["heads"] * shape["head_dim"] * sq / 2
    pk = max(peak or 0.0, peaks()["fp32"])
    floor = flops / (pk * 1e9)
    log(f"training step, {model_name} LoRA SFT (sharpset train's loop, fp32), batch {batch}, {real:.0f} tokens "
        f"({labelled:.0f} labelled) a step, mean of {steps} steps: {seconds:.2f} s/step; {flops / 1e9:.0f} GFLOP "
        f"(body {body / 1e6:.0f}M params, head {head / 1e6:.0f}M) -> {flops / seconds / 1e9:.1f} GFLOP/s = "
        f"{floor / seconds:.0%} of the fp32 peak {pk:.0f} GFLOP/s (floor {floor:.2f} s)")
    return dict(seconds=seconds, flops=flops, floor=floor)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--context", type=int, default=256, help="tokens in the cache when timing starts")
    ap.add_argument("--steps", type=int, default=24, help="decode steps per timed run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    ap.add_argument("--batches", default="8,16,32,64", help="batch sizes for the default variant's sweep")
    ap.add_argument("--no-scoring", action="store_true", help="skip the scoring-forward rows")
    ap.add_argument("--train", action="store_true", help="also one LoRA training step of --train-model against "
                    "its compute floor")
    ap.add_argument("--train-model", default="gemma3-270m")
    ap.add_argument("--only-train", action="store_true", help="the training-step row alone")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from generate import INSTRUCTIONS, load, render

    print(f"load average {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()})")
    if args.only_train:
        training_step(args.train_model)
        return
    model, tok = load()
    got = run(model, tok, render, INSTRUCTIONS, batch=args.batch_size, ctx=args.context, steps=args.steps,
              rounds=args.rounds, batches=tuple(int(b) for b in args.batches.split(",")))
    if not args.no_scoring:
        scoring(model, tok, render, INSTRUCTIONS, batch=args.batch_size, rounds=args.rounds, peak=got["peaks"]["fp32"])
    if args.train:
        training_step(args.train_model, peak=got["peaks"]["fp32"])
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
