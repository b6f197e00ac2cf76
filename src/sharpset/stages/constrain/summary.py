"""The summary of a ``sharpset constrain`` run: per-type pass@1, pass@k and rows kept (Wilson 95%
intervals), the run's metrics and the per-type table it logs.
"""

from __future__ import annotations

from typing import Any

from .config import ConstrainConfig

def type_summary(plans: list[dict], types: list[str]) -> dict[str, dict]:
    """Per type: prompts holding it (n), pass@1, pass@k and rows kept, each a Wilson 95% interval."""
    from ...stats import wilson

    out = {}
    for t in types:
        n = p1 = pk = kept = 0
        frac = 0.0
        for pl in plans:
            for i, c in enumerate(pl["constraints"]):
                if c["id"] != t or not pl["cands"]:
                    continue
                col = [v[i] for v in pl["verdicts"]]
                n += 1
                p1 += col[0]
                pk += any(col)
                frac += sum(col) / len(col)
                kept += pl["kept"]
        out[t] = {"n": n, "pass@1": wilson(p1, n), "pass@k": wilson(pk, n), "kept": wilson(kept, n),
                  "pass_mean": round(frac / n, 4) if n else None}
    return out


def _metrics(cfg: ConstrainConfig, plans: list[dict], types: list[str], kept_rows: list[dict], pairs: list[dict],
             drops: dict[str, int], hows: dict[str, int], rows_new: int, n_new: int, elapsed: float
             ) -> dict[str, Any]:
    """The run's summary: kept and pass rates over the attempted prompts (Wilson 95%), per-type
    pass@1 / pass@k / kept, the types never drawn, never met or never kept, and throughput."""
    from ...stats import wilson

    tried = [pl for pl in plans if pl["cands"]]
    per_type = type_summary(plans, types)
    drawn = [t for t in types if per_type[t]["n"]]
    metrics = {
        "prompts": len(plans), "attempted": len(tried), "kept": len(kept_rows),
        "kept_rate": wilson(len(kept_rows), len(tried)),  # x100: kept rows per 100 attempts
        "dropped": sum(drops.values()), "drop_reasons": drops, "decided_by": hows,
        "candidates": sum(len(pl["cands"]) for pl in tried),
        "truncated_candidates": sum(c["truncated"] for pl in tried for c in pl["cands"]),
        "empty_candidates": sum(not c["text"] for pl in tried for c in pl["cands"]),
        "prompt_pass@1": wilson(sum(pl["pass_all"][0] for pl in tried), len(tried)),
        "prompt_pass@k": wilson(sum(any(pl["pass_all"]) for pl in tried), len(tried)),
        "per_type": {t: v for t, v in per_type.items() if v["n"]},  # the others: types_not_drawn
        "types_not_drawn": [t for t in types if not per_type[t]["n"]],
        "types_never_met": [t for t in drawn if per_type[t]["pass@k"]["k"] == 0],
        "types_zero_kept": [t for t in drawn if per_type[t]["kept"]["k"] == 0],
        # prompts whose candidates this invocation generated (k each, checked, tie-broken, repaired)
        "rows_per_min": round(60 * rows_new / elapsed, 2) if rows_new and elapsed > 0 else None,
        "generated_this_attempt": n_new,
    }
    if cfg.repair:
        repairs = [pl["repair"] for pl in plans if "repair" in pl]
        metrics["repairs"] = {"tried": len(repairs), "passed": sum(r["passed"] for r in repairs)}
    if cfg.pairs:
        metrics["pairs"] = len(pairs)
    return metrics


def _fmt(w: dict) -> str:
    return "   -" if w["rate"] is None else f"{w['rate']:.2f} [{w['ci95'][0]:.2f}, {w['ci95'][1]:.2f}]"


def _table(per_type: dict, k: int) -> str:
    """Per-type summary lines for the log: n, pass@1, pass@k, kept (Wilson 95%)."""
    lines = [f"{'type':46s} {'n':>4s}  {'pass@1':19s} {f'pass@{k}':19s} kept"]
    for t, s in per_type.items():
        lines.append(f"{t:46s} {s['n']:4d}  {_fmt(s['pass@1']):19s} {_fmt(s['pass@k']):19s} {_fmt(s['kept'])}")
    return "\n".join(lines)
