"""Which verdicts of an eval survive the issue-21 statistics? Old and new side by side, from the samples.

    python experiments/verdicts_then_now.py runs/quickstart/eval-base [more eval run folders ...] [--md out.md]

For every eval run folder (``samples/<suite>.jsonl`` with two or more models), each later model is
compared with the first on every suite metric twice, from the same logged per-sample rows:

- **then**: the statistics as they were before issue 21 (commit 60f1339): rows paired by item and
  resampled one by one (percentile bootstrap of the mean difference, zero-width interval at n = 1),
  the verdict read off the interval alone ("better"/"worse" when it excludes 0) -- loaded from git
  (``git show 60f1339:src/sharpset/stats.py``), so the old code is run, not re-described;
- **now**: :func:`sharpset.evaluate.pairing.compare_rows` -- units (invariance: the question), exact
  McNemar / Newcombe for 0/1 metrics under 30 units, sign-flip p otherwise, MDE at 80% power, and
  :func:`sharpset.stats.verdict_text`.

Prints one table per run (suite, metric, n then / units now, then: diff [CI] verdict, now: diff [CI]
p verdict, mde) and the counts: verdicts that survive, that become "no effect larger than X", and
Holm-adjusted counts over all metrics compared.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

OLD_COMMIT = "60f1339"
ROOT = Path(__file__).resolve().parents[1]


def old_stats():
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:src/sharpset/stats.py"], check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "stats_then.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("stats_then", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def old_verdict(c: dict, d: int) -> str:
    """The pre-issue-21 reading: the interval alone decides, zero-width intervals included."""
    if not c or c.get("diff") is None:
        return "-"
    lo, hi = c["ci95"]
    if lo > 0 or hi < 0:
        up = lo > 0
        return ("better" if up == (d > 0) else "worse") if d else ("up" if up else "down")
    return "no clear change"


def load_rows(run: Path) -> dict[str, list[dict]]:
    out = {}
    for f in sorted((run / "samples").glob("*.jsonl")):
        out[f.stem] = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def compare_run(run: Path, seed: int = 0) -> list[dict]:
    from sharpset.evaluate.pairing import compare_rows
    from sharpset.evaluate.suite import direction, get_suite
    from sharpset.stats import verdict, verdict_text

    then = old_stats()
    summary = json.loads((run / "summary.json").read_text())
    labels = [m["label"] for m in summary["models"]]
    out = []
    for sname, rows in load_rows(run).items():
        entry = summary["suites"].get(sname)
        if not entry:
            continue
        metrics, lib = entry["metrics"], entry.get("lower_is_better", [])
        try:
            metrics = list(get_suite(sname).metrics)
        except Exception:  # a suite no longer registered: its summary's metric list
            pass
        by_model = {lab: {r["item"]: r for r in rows if r.get("model") == lab} for lab in labels}
        base = by_model[labels[0]]
        for lab in labels[1:]:
            other = by_model[lab]
            shared = sorted(set(base) & set(other))
            if not shared:
                continue
            now = compare_rows(base, other, metrics, seed) or {}
            for m in metrics:
                d = direction(sname, m, lib)
                old = then.paired_diff_ci([base[k].get(m) for k in shared], [other[k].get(m) for k in shared], seed)
                new = now.get(m) or {}
                if old.get("n", 0) == 0 and not new.get("n"):
                    continue
                out.append({"run": run.name, "comparison": f"{lab} vs {labels[0]}", "suite": sname, "metric": m,
                            "direction": d, "then": old, "then_verdict": old_verdict(old, d), "now": new,
                            "now_verdict": verdict(new, d), "now_text": verdict_text(new, d)})
    return out


def _ci(c: dict) -> str:
    if not c or c.get("diff") is None:
        return "-"
    ci = c.get("ci95")
    return f"{c['diff']:+.3f} " + (f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "(n too small)")


def table(rows: list[dict]) -> str:
    from sharpset.stats import holm

    head = "| comparison | suite | metric | n then | units / rows now | then | then verdict | now | p | mde | now verdict |"
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        o, n = r["then"], r["now"]
        p = n.get("p")
        lines.append(f"| {r['comparison']} | {r['suite']} | {r['metric']} | {o.get('n')} | {n.get('n')} / {n.get('n_rows')} "
                     f"| {_ci(o)} | {r['then_verdict']} | {_ci(n)} | {'-' if p is None else f'{p:.3g}'} "
                     f"| {'-' if n.get('mde') is None else format(n['mde'], '.3f')} | {r['now_text']} |")
    directed = [r for r in rows if r["direction"]]
    then_claims = [r for r in directed if r["then_verdict"] in ("better", "worse")]
    survive = [r for r in then_claims if r["now_verdict"] == r["then_verdict"]]
    now_claims = [r for r in directed if r["now_verdict"] in ("better", "worse")]
    padj = holm([r["now"].get("p") for r in directed])
    holm_claims = [r for r, q in zip(directed, padj) if r["now_verdict"] in ("better", "worse") and q is not None
                   and q < 0.05]
    lines.append("")
    lines.append(f"metrics with a better direction compared: {len(directed)} (of {len(rows)} in all)")
    lines.append(f"then: {len(then_claims)} better/worse verdicts; now: {len(now_claims)} "
                 f"({len(holm_claims)} after Holm over {len(directed)}); of the old ones {len(survive)} survive, "
                 f"{len(then_claims) - len(survive)} become 'no effect larger than X' or 'n too small'")
    for r in then_claims:
        if r not in survive:
            lines.append(f"- {r['comparison']} {r['suite']}/{r['metric']}: then {r['then_verdict']} {_ci(r['then'])} "
                         f"(n={r['then'].get('n')}); now {r['now_text']} (units {r['now'].get('n')}, p={r['now'].get('p')})")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="eval run folders (each with samples/ and summary.json)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--md", default="", help="also write the tables to this markdown file")
    a = ap.parse_args(argv)
    parts = []
    for run in a.runs:
        rows = compare_run(Path(run), a.seed)
        parts.append(f"## {run}\n\n{table(rows)}\n")
    text = "\n".join(parts)
    print(text)
    if a.md:
        Path(a.md).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
