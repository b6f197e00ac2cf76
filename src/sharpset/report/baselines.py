"""A sweep's targeted cells against its baseline cells of the same n and seed (issue 25).

``sharpset sweep`` pairs every cell, per item, with the ``random`` cell of the same n and seed
(sweep.json ``vs_random``) and, where the ``quality-diversity`` target ran, with that cell too
(``vs_quality_diversity``): the question a targeted selection must answer is whether it beats a
random draw and a target-blind pick of the same size. Nothing is recomputed here: the rows are read
from each sweep folder's ``sweep.json`` (a folder holding one, among the runs read). One table per
target, named as the sweep's ``plan.json`` names its cells ("constraints (less)" where the cells
select by LESS), rows per n, seed, suite and metric with each baseline beside the other, and a
line counting the rows whose 95% interval lies on the metric's better side of 0 (sweep.json's
``direction``: above 0 where higher is better, below where lower is), its worse side, or straddles
it; rows of a metric with no better direction (lengths, rates; or a sweep.json from before rows
carried one) are counted apart, as up or down. A run that is no
sweep, or a sweep without these rows, adds nothing to the report.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import UserError
from .collect import PLAN_FILE, Collection, Run, _read_json
from .html import ci_text, grid, n_text, num, p_text
from .svg import esc

SWEEP_FILE = "sweep.json"
BASELINES = (("vs_random", "random"), ("vs_quality_diversity", "quality-diversity"))  # sweep.json key, its cell
ROW_KEYS = ("target", "n", "seed", "suite", "metric")
TITLE = "Against the baselines, same n and seed"
INTRO = ("Each cell of a sweep against its baseline cells of the same n and seed, paired per item (sweep.json's "
         "vs_random and vs_quality_diversity): diff = target − baseline with its paired 95% interval over the n "
         "independent items; MDE = the effect this n detects with 80% power. A targeted selection beats a "
         "baseline only where the interval lies above 0 (below 0 for a metric where lower is better): the "
         "line above each table counts those rows as better; one straddling 0 shows no difference larger "
         "than its ends.")
HEAD = ["n", "seed", "suite", "metric", "against", "baseline", "target", "diff [95% CI]", "n (items)", "p · MDE"]


def _labels(run: Run) -> dict[str, str]:
    """target -> the sweep's name for its cells, from the plan.json it writes for the report (labels
    ``<target>[ (less)] n=<n> seed <seed>``): "constraints (less)" where the cells select by LESS."""
    plan = _read_json(run.path / PLAN_FILE) if (run.path / PLAN_FILE).is_file() else {}
    out: dict[str, str] = {}
    for e in plan.get("models", []) if isinstance(plan, dict) else []:
        if isinstance(e, dict) and e.get("target") and e.get("label"):
            out.setdefault(str(e["target"]), re.sub(r" n=\d+ seed \S+$", "", str(e["label"])))
    return out


SIDES = ("better", "worse", "straddling", "up", "down", "no interval")


def side(r: dict) -> str:
    """Where a row's 95% interval lies: "better" / "worse" (on the metric's better / worse side of 0,
    by the row's ``direction``), "straddling" 0, "up" / "down" (above / below 0 for a metric with no
    better direction), or "no interval"."""
    ci = r.get("ci95")
    if not ci:
        return "no interval"
    if ci[0] <= 0 <= ci[1]:
        return "straddling"
    up = ci[0] > 0
    d = r.get("direction") or 0
    if not d:
        return "up" if up else "down"
    return "better" if up == (d > 0) else "worse"


def tables(col: Collection) -> list[dict[str, Any]]:
    """Per sweep folder among the runs read and per target with baseline rows: ``{"sweep", "target",
    "label", "title", "about" (sweep.json's candidates line), "rows" (sweep.json's rows, each with
    ``against``: the baseline's cell), "counts": {baseline: {rows, above, below, straddling, no
    interval}}}``; targeted cells first, then the baselines' own rows against each other."""
    sweeps = [r for r in col.runs if (r.path / SWEEP_FILE).is_file()]
    out = []
    for run in sweeps:
        res = _read_json(run.path / SWEEP_FILE)
        if not isinstance(res, dict):
            continue
        by_target: dict[str, list[dict]] = {}
        for key, baseline in BASELINES:
            for i, r in enumerate(res.get(key) or []):
                if not isinstance(r, dict) or not all(k in r for k in ROW_KEYS):
                    raise UserError(f"{run.path / SWEEP_FILE}: {key}[{i}]: expected a row with {', '.join(ROW_KEYS)}")
                by_target.setdefault(str(r["target"]), []).append({**r, "against": baseline})
        labels, about = _labels(run), res.get("candidates") or {}
        order = [b for _, b in BASELINES]
        for target in sorted(by_target, key=lambda t: t in order):  # stable: the sweep's order within each
            pos: dict[tuple, int] = {}  # suites and metrics in the sweep's order, each baseline beside the other
            rows = sorted(by_target[target], key=lambda r: (r["n"], r["seed"], pos.setdefault(
                (r["suite"], r["metric"]), len(pos)), order.index(r["against"])))
            counts = {}
            for b in order:
                sides = [side(r) for r in rows if r["against"] == b]
                if sides:
                    counts[b] = {"rows": len(sides), **{s: sides.count(s) for s in SIDES}}
            label = labels.get(target, target)
            out.append({"sweep": run.name, "target": target, "label": label, "about": about.get(target),
                        "title": f"{label} ({run.name})" if len(sweeps) > 1 else label, "rows": rows,
                        "counts": counts})
    return out


def summary(t: dict) -> str:
    """The target's rows in one line: per baseline, how many 95% intervals lie on the better side of 0,
    the worse side or across it, and (apart) how many of a metric with no better direction moved."""
    parts = []
    for b, k in t["counts"].items():
        text = (f"against {b}, {k['better']} of {k['rows']} rows better, {k['worse']} worse, "
                f"{k['straddling']} straddling 0")
        if k["up"] or k["down"]:
            text += f", {k['up'] + k['down']} with no better direction moved ({k['up']} up, {k['down']} down)"
        if k["no interval"]:
            text += f", {k['no interval']} without an interval (n too small)"
        parts.append(text)
    return f"{t['label']}: " + "; ".join(parts) + "."


def cells(r: dict) -> list:
    """One row's cells as text (report.md and report.html)."""
    return [r["n"], r["seed"], r["suite"], r["metric"], r["against"], num(r.get("before")), num(r.get("after")),
            ci_text(r.get("diff"), r.get("ci95")), n_text({"n": r.get("n_items"), "n_rows": r.get("n_rows")}),
            p_text({"p": r.get("p"), "mde": r.get("mde")}) or "-"]


def baselines_md(col: Collection) -> list[str]:
    """The section as Markdown lines (``md`` escapes data text); none without baseline rows."""
    from .markdown import _table, md

    ts = tables(col)
    if not ts:
        return []
    out = [f"## {TITLE}", "", md(INTRO), ""]
    for t in ts:
        out += [f"### {md(t['title'])}", ""] + ([f"Candidates: {md(t['about'])}", ""] if t["about"] else [])
        out += [md(summary(t)), ""] + _table(HEAD[:6] + [t["label"]] + HEAD[7:], [cells(r) for r in t["rows"]])
    return out


def baselines_section(col: Collection) -> str:
    """The section as HTML; empty without baseline rows."""
    ts = tables(col)
    if not ts:
        return ""
    out = [f'<section id="baselines"><h2>{esc(TITLE)}</h2><p>{esc(INTRO)}</p>']
    for t in ts:
        out.append(f"<h3>{esc(t['title'])}</h3>" + (f'<p class="meta">Candidates: {esc(t["about"])}</p>'
                                                     if t["about"] else "")
                   + f"<p>{esc(summary(t))}</p>" + grid(HEAD[:6] + [t["label"]] + HEAD[7:],
                                                         [cells(r) for r in t["rows"]], text_cols=5))
    out.append("</section>")
    return "".join(out)
