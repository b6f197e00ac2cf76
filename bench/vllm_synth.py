"""`sharpset synth` with its engine swapped for the vLLM backend (issue 15), then every output row
validated with the same checker as `sharpset validate`.

A stopgap until the stages take `--engine vllm` themselves: it replaces `sharpset.engine.get_engine`
for the run, so the stage code, records and provenance are exactly those of `sharpset synth`.
Needs vllm importable (the CPU build's venv, docs/scale.md).

usage: python bench/vllm_synth.py --out DIR [--n 16] [--response-max-tokens 96]
"""

from __future__ import annotations

import argparse
import os


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--response-max-tokens", type=int, default=96)
    args = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")

    import sharpset.engine as engine_mod
    from sharpset import synth
    from sharpset.cli import main as cli_main
    from sharpset.config import from_mapping
    from sharpset.run import RunDir

    real = engine_mod.get_engine
    built = []

    def vllm_engine(name, **kw):
        eng = real("vllm", options={"dtype": "float32", "max_model_len": 2048, "enforce_eager": True}, **kw)
        built.append(eng)
        return eng

    engine_mod.get_engine = vllm_engine
    cfg = from_mapping(synth.SynthConfig, {"n": args.n, "response_max_tokens": args.response_max_tokens})
    run = RunDir.open(args.out, synth.STAGE, synth.VERSION, cfg, seeds={"seed": cfg.seed})
    metrics = synth.run(cfg, run)
    engine_mod.get_engine = real
    assert built, "synth did not build an engine through get_engine"
    print("engine:", type(built[0]).__name__, "metrics:", metrics)
    for e in built:
        e.close()
    outs = [f for f in os.listdir(args.out) if f.endswith(".jsonl") and not f.startswith("samples")]
    for f in outs:
        print(f"validate {f}: exit {cli_main(['validate', os.path.join(args.out, f)])}")


if __name__ == "__main__":
    main()
