"""Loop rate, truncation rate and clean-row yield of ``sharpset synth`` run folders (issue 13).

For each run folder: attempts (manifest), rows written, and over those rows: truncated (the response
hit response_max_tokens), loop (sharpset.text.degeneration.is_loop), refusal, and clean = not empty,
not a loop, complete (not truncated), not a refusal -- the degeneration/completeness gates. The
clean-row yield is clean / attempts. Also: mean response tokens and the mean longest-repeat share.

Run: PYTHONPATH=src python experiments/synth_health.py RUN_DIR [RUN_DIR ...] [--attempts A B ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv=None) -> int:
    from sharpset.text.degeneration import health

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--attempts", nargs="*", type=int, default=None,
                    help="only rows of these attempt numbers (e.g. to compare the same instructions)")
    args = ap.parse_args(argv)
    from sharpset.stats import wilson

    def rate(k: int, n: int) -> str:  # a share with its Wilson 95% interval
        w = wilson(k, n)
        return f"{k / max(n, 1):.3f} [{w['ci95'][0]:.3f}, {w['ci95'][1]:.3f}]"

    print("| run | attempts | rows | truncated [95% CI] | loop [95% CI] | refusal | clean | clean-row yield [95% CI] "
          "| mean tokens | mean repeat share |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        d = Path(run)
        man = json.loads((d / "manifest.json").read_text())
        rows = [json.loads(x) for x in (d / "synth.jsonl").read_text().splitlines()]
        if args.attempts is not None:
            keep = set(args.attempts)
            rows = [r for r in rows if r["provenance"]["attempt"] in keep]
            attempts = len(keep)
        else:
            attempts = man["metrics"]["attempts"]
        hs = []
        for r in rows:
            ins = next(m["content"] for m in r["messages"] if m["role"] == "user")
            res = next(m["content"] for m in reversed(r["messages"]) if m["role"] == "assistant")
            hs.append(health(res, prompt=ins, truncated=r["truncated"]))
        n = len(rows) or 1
        clean = sum(h["n_words"] > 0 and not h["loop"] and h["complete"] and not h["refusal"] for h in hs)
        k_tr, k_loop = sum(r["truncated"] for r in rows), sum(h["loop"] for h in hs)
        print(f"| {d.name} | {attempts} | {len(rows)} | {rate(k_tr, len(rows))} | {rate(k_loop, len(rows))} "
              f"| {sum(h['refusal'] for h in hs)} | {clean} | {rate(clean, attempts)} "
              f"| {sum(r['response_tokens'] for r in rows) / n:.0f} | {sum(h['repeat_share'] for h in hs) / n:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
