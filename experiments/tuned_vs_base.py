"""Do a tuned model's answers differ from its base's? Greedy answers of both on the same prompts.

    python experiments/tuned_vs_base.py --base gemma3-270m --tuned runs/x/merged --data curated/ --n 8

Prompts: the first user turn of the first ``--n`` rows of ``--data`` (or of a held-out file), rendered
by each model's own chat profile; greedy, ``--max-new-tokens``; both through sharpset's engine.
Prints both answers per prompt and the share of prompts whose answers differ.
"""

from __future__ import annotations

import argparse


def answers(name: str, prompts: list[str], max_new: int, family: str | None = None) -> list[str]:
    from sharpset.engine import GenerationRequest, SamplingParams, get_engine
    from sharpset.models import load_model
    from sharpset.models.profiles import encode_prompt, profile_for, stop_token_ids
    from sharpset.models.registry import chat_family

    model, tok = load_model(name, log=lambda *_: None)
    # a model tuned from a template-less base (gemma3-270m) is saved without a chat template too:
    # it was trained in the base's family (train records it), so the caller passes that family
    profile = profile_for(tok, chat_family(name) or family)
    eng = get_engine("transformers", model=model, tokenizer=tok, batch_size=8)
    params = SamplingParams(max_new_tokens=max_new, stop_token_ids=tuple(stop_token_ids(profile, tok)),
                            stop_strings=tuple(profile.stop_strings))
    reqs = [GenerationRequest(encode_prompt(profile, tok, [{"role": "user", "content": p}]), params, key=str(i))
            for i, p in enumerate(prompts)]
    return [r.text for r in eng.generate(reqs, progress=False)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--tuned", required=True)
    ap.add_argument("--data", required=True, help="rows with messages; their first user turns are the prompts")
    ap.add_argument("--skip", type=int, default=0, help="skip this many rows first (e.g. past the training rows)")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    args = ap.parse_args(argv)
    from sharpset.models.registry import chat_family
    from sharpset.records import read_records

    rows = read_records(args.data).rows[args.skip:args.skip + args.n]
    prompts = [next(m["content"] for m in r["messages"] if m["role"] == "user") for r in rows]
    a, b = answers(args.base, prompts, args.max_new_tokens), answers(args.tuned, prompts, args.max_new_tokens,
                                                                     family=chat_family(args.base))
    for p, x, y in zip(prompts, a, b):
        print(f"--- {p[:100]!r}\n  base : {x[:200]!r}\n  tuned: {y[:200]!r}")
    diff = sum(x != y for x, y in zip(a, b))
    print(f"answers differ on {diff}/{len(prompts)} prompts (greedy, {args.max_new_tokens} new tokens)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
