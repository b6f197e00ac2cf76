"""Train a base model on several selections from one tagged pool, evaluate all against the base,
paired on the same items (issues 13 and 14).

Two designs, each a list of *arms* (selection x training settings x seed), every step a cached,
resumable stage run under ``--out``:

- ``selection`` (issue 13): ``--n`` rows chosen three ways from the same pool -- ``signals`` (the
  degeneration/completeness gates, then DEITA quality x diversity ranked by ``quality_lm``, as the
  quickstart's curated set), ``random`` (ungated pool), ``judge`` (the old way: no gates, DEITA ranked
  by the embedded judge's 1-6 ``quality`` score, gate 3.5) -- for each seed (the random draw and the
  training order change with it); the same step budget and learning rate for every arm.
- ``defaults`` (issue 14): ``--n`` random rows, trained at each (learning rate, steps) of a grid with
  the train stage's other defaults (LoRA r16, batch 8), to choose the defaults for small sets.

Then one ``sharpset eval`` of the base and every trained model (``--suites``, health always added),
and a markdown table: each arm's metrics as paired differences against the base (bootstrap 95% CI,
n items), plus how many of its answers differ from the base's (Wilson 95% CI).

    python experiments/sft_arms.py selection --pool runs/pool/dedup --out runs/sel --n 100 --seeds 2
    python experiments/sft_arms.py defaults --pool runs/pool/dedup --out runs/defaults --n 64 \\
        --grid 2e-4:8,2e-4:32,1e-3:8,1e-3:32
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _stage(argv: list[str]) -> None:
    """One stage in its own process: memory is returned between arms (in one process, four gemma3
    trainings in a row grew to 9.9 GB resident and were OOM-killed beside other jobs)."""
    import subprocess

    print("$ sharpset " + " ".join(argv), flush=True)
    t0 = time.perf_counter()
    rc = subprocess.run([sys.executable, "-c", "import sys; from sharpset.cli import main; sys.exit(main())",
                         *argv]).returncode
    if rc:
        raise SystemExit(f"sharpset {argv[0]} failed (exit {rc})")
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


def selection_arms(args) -> list[dict]:
    from sharpset.signals import QUALITY_THRESHOLD

    how = {"signals": ["--strategy", "quality-diversity", "--quality-column", "quality_lm",
                       "--min-quality", str(QUALITY_THRESHOLD)],
           "random": ["--strategy", "random", "--gates", "[]", "--min-quality", "null"],
           "judge": ["--strategy", "quality-diversity", "--quality-column", "quality", "--min-quality", "3.5",
                     "--gates", "[]"]}
    return [{"name": f"{arm}-s{seed}", "curate": how[arm], "seed": seed, "lr": args.lr, "steps": args.steps,
             "batch_size": args.batch_size} for seed in range(args.seeds) for arm in args.arms.split(",")]


def default_arms(args) -> list[dict]:
    arms = []
    for cell in args.grid.split(","):
        lr, steps = cell.split(":")
        arms.append({"name": f"lr{lr}-steps{steps}", "curate": ["--strategy", "random", "--gates", "[]",
                                                                 "--min-quality", "null"],
                     "seed": 0, "lr": float(lr), "steps": int(steps), "batch_size": args.batch_size})
    return arms


def answer_changes(samples: Path, base: str, label: str) -> dict:
    """How many of ``label``'s generated answers differ from ``base``'s on the same items."""
    from sharpset.stats import wilson

    k = n = 0
    for f in sorted(samples.glob("*.jsonl")):
        rows = [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
        a = {r["item"]: r.get("answer") for r in rows if r["model"] == base and r.get("answer") is not None}
        b = {r["item"]: r.get("answer") for r in rows if r["model"] == label and r.get("answer") is not None}
        for item in set(a) & set(b):
            n += 1
            k += a[item] != b[item]
    return wilson(k, n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("design", choices=("selection", "defaults"))
    ap.add_argument("--pool", required=True, help="tagged (and deduplicated) pool: file, folder or run folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--arms", default="signals,random,judge")
    ap.add_argument("--grid", default="2e-4:8,2e-4:32,1e-3:8,1e-3:32", help="defaults: lr:steps,...")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--suites", default="format")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--metrics", default="format.prompt_strict,format.prompt_loose,health.echo,health.loop,"
                                         "health.complete,health.empty")
    args = ap.parse_args(argv)
    out = Path(args.out)
    arms = selection_arms(args) if args.design == "selection" else default_arms(args)
    trained = []
    for arm in arms:
        sel, tr = out / f"select-{arm['name']}", out / f"train-{arm['name']}"
        _stage(["curate", "--input", args.pool, "--n", str(args.n), "--seed", str(arm["seed"]), *arm["curate"],
                "--out", str(sel)])
        _stage(["train", "--model", args.model, "--sft", str(sel / "selected.jsonl"), "--lr", str(arm["lr"]),
                "--max-steps", str(arm["steps"]), "--batch-size", str(arm["batch_size"]), "--seed", str(arm["seed"]),
                "--save-every", "0", "--out", str(tr)])
        trained.append((arm, tr))
    ev = out / ("eval" if len(trained) <= 3 else f"eval-{len(trained)}")  # seeds added later: a new eval run
    _stage(["eval", args.model, *[str(t) for _, t in trained], "--suites", args.suites, "--limit", str(args.limit),
            "--max-new-tokens", str(args.max_new_tokens), "--progress", "false", "--out", str(ev)])
    summary = json.loads((ev / "summary.json").read_text())
    labels = [m["label"] for m in summary["models"]]
    metrics = [m.split(".", 1) for m in args.metrics.split(",")]
    base_vals = {f"{s}.{m}": summary["suites"].get(s, {}).get("models", {}).get(labels[0], {}).get(m) for s, m in metrics}
    print(f"\n## {args.design}: {args.model}, {args.n} rows per arm, eval {args.suites}+health, "
          f"limit {args.limit}, greedy {args.max_new_tokens} tokens; paired diff vs base [95% CI]\n")
    print("| arm | rows | lr | steps | loss first -> last | answers differ from base | "
          + " | ".join(f"{s}.{m}" for s, m in metrics) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(metrics))
    cells = []
    for s, m in metrics:
        v = base_vals[f"{s}.{m}"]
        cells.append(f"{v['mean']:.3f} (n={v['n']})" if v and v.get("mean") is not None else "-")
    print(f"| base {args.model} | - | - | - | - | - | " + " | ".join(cells) + " |")
    for (arm, tr), lab in zip(trained, labels[1:]):
        man = json.loads((tr / "manifest.json").read_text())
        curve = [json.loads(x) for x in (tr / "losses.jsonl").read_text().splitlines() if x.strip()] \
            if (tr / "losses.jsonl").exists() else []
        losses = [r["loss"] for r in curve if "loss" in r]
        loss = f"{losses[0]:.2f} -> {losses[-1]:.2f}" if losses else "-"
        rows = man.get("metrics", {}).get("rows_used") or man.get("counts", {}).get("written")
        ch = answer_changes(ev / "samples", labels[0], lab)
        cells = []
        for s, m in metrics:
            c = summary.get("comparisons", {}).get(s, {}).get(f"{lab} vs {labels[0]}", {}).get(m)
            cells.append(f"{c['diff']:+.3f} [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]" if c and c.get("diff") is not None
                         else "-")
        print(f"| {arm['name']} | {rows} | {arm['lr']:g} | {arm['steps']} | {loss} | {ch['k']}/{ch['n']} "
              f"[{ch['ci95'][0]:.2f}, {ch['ci95'][1]:.2f}] | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
