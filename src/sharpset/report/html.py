"""The report page: header, the plain-words summary and the effect table; the other sections are
in :mod:`sharpset.report.sections`. Every value from data goes through :func:`esc` (html.escape)."""

from __future__ import annotations

from typing import Any

from .collect import HEADLINE, HEADLINE_FALLBACK, Collection, answer_changes, effect_rows, improved_counts
from .style import CSP, CSS
from .svg import esc, mini_interval

VERDICT_WORDS = {"better": "improved", "worse": "worse", "up": "moved up", "down": "moved down",
                 "null": "no clear change", "n too small": "n too small", "no-data": "no data"}
GATED_BETTER = "better way, not counted"  # a "better" metric of a model whose answers do not end


def verdict_words(r: dict) -> str:
    """A row's verdict in words: "no effect larger than X" where the interval includes 0 (X its larger
    end), "n too small", and "improved" only for a model that passes the health gate."""
    if r["verdict"] == "better" and r.get("health_gate"):
        return GATED_BETTER
    if r["verdict"] == "null" and r.get("verdict_text"):
        return r["verdict_text"]
    return VERDICT_WORDS.get(r["verdict"], r["verdict"])


def num(v: Any, digits: int = 3, sign: bool = False) -> str:
    if v is None:
        return "null"
    if isinstance(v, float) and v != v:
        return "NaN"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:+d}" if sign else str(v)
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def ci_text(diff: Any, ci: Any, digits: int = 3) -> str:
    if diff is None:
        return "null (no paired items)"
    if not ci:
        return f"{num(diff, digits, sign=True)} (no interval: n too small)"
    return f"{num(diff, digits, sign=True)} [{num(ci[0], digits)}, {num(ci[1], digits)}]"


def grid(head: list[str], rows: list[list], text_cols: int = 2) -> str:
    """A table of text cells, every one escaped; the columns after the first ``text_cols`` right-aligned
    (the proxy-tuning and baseline tables)."""
    return ('<div class="tablewrap"><table class="effects"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in head)
            + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f'<td{" class=num" if k >= text_cols else ""}>{esc(c)}</td>'
                                       for k, c in enumerate(r)) + "</tr>" for r in rows)
            + "</tbody></table></div>")


def mean_text(c: dict | None, digits: int = 3) -> str:
    """A single model's mean with its interval and n; "null (no items)" when there were none."""
    if not c or c.get("mean") is None:
        return "null (no items)"
    ci = c.get("ci95")
    return (f"{num(c['mean'], digits)} [{num(ci[0], digits)}, {num(ci[1], digits)}]" if ci else num(c["mean"], digits)) \
        + f" n={c.get('n', '?')}"


def per_example_text(r: dict) -> str:
    if r["per_example"] is None:
        return "null" if r["diff"] is None else "n/a (training size unknown)"
    if not r["per_example_ci95"]:
        return f"{small(r['per_example'], True)} (n too small)"
    lo, hi = r["per_example_ci95"]
    return f"{small(r['per_example'], True)} [{small(lo)}, {small(hi)}]"


def small(v: float, sign: bool = False) -> str:
    """Two significant digits (effects per example are small: 0.0013, not 1.30e-03)."""
    return "0" if v == 0 else format(v, "+.2g" if sign else ".2g")


def chip(verdict: str, words: str | None = None) -> str:
    cls = verdict.replace(" ", "-")
    return f'<span class="chip {esc(cls)}">{esc(words or VERDICT_WORDS.get(verdict, verdict))}</span>'


def n_text(r: dict) -> str:
    """n = independent units, with the rows beside where units hold several rows (invariance questions)."""
    return f"n={r['n']}" + (f" ({r['n_rows']} rows)" if r.get("n_rows") not in (None, r["n"]) else "")


def p_text(r: dict) -> str:
    """p, its Holm adjustment over the model's compared metrics, and the 80%-power detectable effect."""
    bits = []
    if r.get("p") is not None:
        bits.append(f"p={r['p']:.2g}" + (f" (Holm {r['p_holm']:.2g})" if r.get("p_holm") is not None else ""))
    if r.get("mde") is not None:
        bits.append(f"detectable ≥{r['mde']:.2g}")
    return " · ".join(bits)


def improved_text(k: dict, gated: int = 0) -> str:
    """"X improved (Y after Holm over the T tested)", the Holm count only where it differs or matters."""
    holm = (f" ({k['improved_holm']} after Holm adjustment for {k['tested']} comparisons)" if k["tested"] else "")
    return f'<b class="good">{k["improved"]} improved</b>{esc(holm)}' + (
        f' ({gated} more moved the better way in models whose answers do not end: not counted)' if gated else '')


def model_meta(t) -> str:
    bits = []
    if t.target:
        bits.append(f"target <b>{esc(t.target)}</b>")
    bits.append(f"{esc(t.n_examples)} training examples" if t.n_examples else "training size unknown")
    if t.seed is not None:
        bits.append(f"seed {esc(t.seed)}")
    if t.selection:
        bits.append(esc(t.selection))
    bits.append(f"compared with <b>{esc(t.base_label)}</b> on the same items ({esc(t.where)})")
    return " · ".join(bits)


def _metric_name(r: dict) -> str:
    return f"{r['suite']} {r['metric']}"


def moved_items(r: dict) -> str:
    """Per-item movement of a paired metric, named by its better direction where it has one."""
    if r["fixed"] is None or not r["n"]:
        return ""
    up, down = r["fixed"], r["broken"]
    if r["direction"] > 0:
        return f"{up} improved, {down} worsened"
    if r["direction"] < 0:
        return f"{down} improved, {up} worsened"
    return f"{up} up, {down} down"


ORDER = {"better": 0, "worse": 1, "up": 2, "down": 2, "null": 3, "n too small": 4, "no-data": 5}


def _summary_rows(rs: list[dict]) -> str:
    # fixed column widths: at auto layout the wrapped p / moved-items cells pushed the table past its card
    widths = (17, 15, 10, 14, 15, 6, 13, 10)  # % of the card: chip, metric, start -> tuned, mini, ci, n, p, moved
    out = ['<div class="tablewrap"><table class="sumtab"><colgroup>'
           + "".join(f'<col style="width:{w}%">' for w in widths) + '</colgroup><tbody>']
    for r in rs:
        out.append(f'<tr class="{esc(r["verdict"].replace(" ", "-"))}"><td>{chip(r["verdict"], verdict_words(r))}</td>'
                   f'<td><b>{esc(r["suite"])}</b> {esc(r["metric"])}</td>'
                   f'<td class="num">{esc(num(r["start"]))} → {esc(num(r["tuned"]))}</td>'
                   f'<td>{mini_interval(r["diff"], *(r["ci95"] or (None, None)), r["verdict"])}</td>'
                   f'<td class="num">{esc(ci_text(r["diff"], r["ci95"]))}</td>'
                   f'<td class="num muted">{esc(n_text(r))}</td><td class="muted">{esc(p_text(r))}</td>'
                   f'<td class="muted">{esc(moved_items(r))}</td></tr>')
    out.append('</tbody></table></div>')
    return "".join(out)


MAX_CARDS = 6  # more tuned models than this (a sweep): one compact row each instead of a card


def _compact_summary(col: Collection, rows: list[dict]) -> str:
    """One row per tuned model: its headline diff per suite (coloured by verdict) and whether it took hold."""
    head = [r for r in rows if r["headline"]]
    pairs = list(dict.fromkeys((r["suite"], r["metric"]) for r in head))
    out = ['<div class="tablewrap"><table class="compact"><thead><tr><th>model</th><th>target</th>'
           '<th class="num">n ex.</th><th class="num">seed</th><th>answers changed</th>']
    out += [f'<th>{esc(s)} · {esc(m)}</th>' for s, m in pairs]
    out.append('</tr></thead><tbody>')
    for t in sorted(col.tuned, key=lambda t: (str(t.target), t.n_examples or 0, str(t.seed))):
        mine = {(r["suite"], r["metric"]): r for r in head if r["eval_label"] == t.label and r["eval_run"] == t.where}
        ch = answer_changes(t)["pooled"]
        took = f'{ch["k"]}/{ch["n"]}' if ch["n"] else "—"
        gate = next((r["health_gate"] for r in rows if r["eval_label"] == t.label and r["eval_run"] == t.where
                     and r.get("health_gate")), None)
        out.append(f'<tr><td>{esc(t.display)}'
                   + (f'<div class="meta bad">not counted as improved: {esc(gate)}</div>' if gate else '') + '</td>'
                   f'<td>{esc(t.target or "—")}</td><td class="num">{esc(t.n_examples or "?")}</td>'
                   f'<td class="num">{esc(t.seed if t.seed is not None else "—")}</td>'
                   f'<td class="{"warncell" if ch["n"] and not ch["k"] else ""}">{esc(took)}</td>')
        for p in pairs:
            r = mine.get(p)
            cls = "gated" if r and r["verdict"] == "better" and gate else (r or {}).get("verdict", "").replace(" ", "-")
            out.append(f'<td class="v-{esc(cls)} num">{esc(ci_text(r["diff"], r["ci95"]))}</td>' if r
                       else '<td class="muted">—</td>')
        out.append('</tr>')
    out.append('</tbody></table></div><p class="meta">Cells: headline diff (tuned − start) [paired 95% interval], '
               'green = improved, red = worse, grey = no effect larger than the interval\'s end; a model whose '
               'answers do not end is never green. Every metric of every model is in the full table below.</p>')
    return "".join(out)


def _lede(rows: list[dict], gate: str | None = None) -> str:
    """One model's (or, ``gate`` None, several models') metrics in words: improved (raw and after
    Holm), worse, moved, "no effect larger than X" (interval includes 0), n too small, no data."""
    k = {v: sum(r["verdict"] == v for r in rows) for v in ORDER}
    counted = [r for r in rows if not r.get("health_gate")]
    c = improved_counts(counted)
    c["tested"] = sum(r.get("p") is not None and r["verdict"] != "no-data" for r in rows)
    gated = sum(r["verdict"] == "better" and bool(r.get("health_gate")) for r in rows)
    if gate:
        parts = [f'<b class="bad">not counted as improved</b> ({gated} moved the better way; see the box above)']
    else:
        parts = [improved_text(c, gated)]
    parts.append(f'<b class="bad">{k["worse"]} got worse</b>')
    if k["up"] + k["down"]:
        parts.append(f'{k["up"] + k["down"]} moved with no better direction')
    parts.append(f'<b>{k["null"]} showed no effect larger than the end of their 95% interval</b> (it includes 0)')
    if k["n too small"]:
        parts.append(f'{k["n too small"]} had too few items for an interval')
    if k["no-data"]:
        parts.append(f'{k["no-data"]} had no data')
    return f'{len(rows) - k["no-data"]} paired metrics compared: ' + ", ".join(parts) + '.'


def summary_section(col: Collection, rows: list[dict]) -> str:
    """The top of the page: one plain-words sentence per tuned model, and its metrics in the order
    improved, worsened, moved (no better direction), no effect larger than X, n too small, no data.
    "Improved" counts stand beside their Holm-adjusted count; a model whose answers do not end
    (:func:`sharpset.report.collect.health_gate`) is never summarised as improved, and says why."""
    out = ['<section id="summary">'] + [f'<div class="warnbox">{esc(w)}</div>' for w in col.warnings]
    if not col.tuned:
        out.append('<p class="lede">No comparison to report: no eval run here holds a tuned model beside its '
                   'starting model. Evaluate both together (<code>sharpset eval BASE TUNED</code>) to get paired '
                   'effects; the pipeline counts and runs are below.</p></section>')
        return "".join(out)
    if len(col.tuned) > 1:
        out.append(f'<p class="lede">{len(col.tuned)} tuned models, each compared with its starting model on the same '
                   f'items. {_lede(rows)}</p>')
    if len(col.tuned) > MAX_CARDS:
        out.append(_compact_summary(col, rows))
    for t in col.tuned[:0 if len(col.tuned) > MAX_CARDS else None]:
        mine = [r for r in rows if r["eval_label"] == t.label and r["eval_run"] == t.where]
        gate = next((r["health_gate"] for r in mine if r.get("health_gate")), None)
        ch = answer_changes(t)["pooled"]
        if ch["n"] and ch["k"] == 0:
            took = (f'<div class="warnbox">All {ch["n"]} of its answers are identical to the starting model\'s: '
                    'as far as these items show, training changed nothing.</div>')
        elif ch["n"]:
            lo, hi = ch["ci95"]
            took = (f'<p class="meta">Took hold: {esc(ch["k"])} of {esc(ch["n"])} answers differ from the starting '
                    f'model\'s ({ch["rate"]:.0%}, 95% {lo:.0%}–{hi:.0%}).</p>')
        else:
            took = ""
        ordered = sorted(mine, key=lambda r: (ORDER[r["verdict"]], not r["headline"], -abs(r["diff"] or 0)))
        shown = [r for r in ordered if r["verdict"] != "null" or r["headline"]]
        hidden = [r for r in ordered if r not in shown]
        out.append(f'<div class="card"><h3>{esc(t.display)}</h3><div class="meta">{model_meta(t)}</div>'
                   + (f'<div class="warnbox">Not summarised as improved: {esc(gate)}.</div>' if gate else '')
                   + f'<p class="lede">{_lede(mine, gate)}</p>' + took + _summary_rows(shown)
                   + ('<p class="meta">No effect larger than (95% interval includes 0): '
                      + esc("; ".join(f"{r['suite']} {r['metric']} {effect_words(r)}" for r in hidden))
                      + '. Details in the full table below.</p>' if hidden else '') + '</div>')
    if col.notes:
        out.append('<ul class="meta">' + "".join(f"<li>{esc(n)}</li>" for n in col.notes) + '</ul>')
    out.append('</section>')
    return "".join(out)


def effect_words(r: dict) -> str:
    """The X of "no effect larger than X" (the interval's larger end), with the detectable effect."""
    from ..stats import effect_bound

    x = effect_bound(r)
    return (f"±{x:.3g}" if x is not None else "?") + (f" (detectable ≥{r['mde']:.2g})" if r.get("mde") is not None else "")


def _effect_table(rows: list[dict]) -> str:
    head = ("model", "suite · metric", "start → tuned", "diff [95% CI]", "n", "p (Holm) · MDE", "items moved",
            "per example [95% CI]", "")
    out = ['<div class="tablewrap"><table class="effects"><thead><tr>']
    out += [f'<th{" class=num" if h in ("n", "diff [95% CI]", "per example [95% CI]") else ""}>{esc(h)}</th>'
            for h in head]
    out.append('</tr></thead><tbody>')
    for r in rows:
        arrow = {1: " ↑", -1: " ↓", 0: ""}[r["direction"]]
        meta = " · ".join(x for x in (r["target"] and f"target {r['target']}",
                                      f"{r['n_examples']} ex." if r["n_examples"] else "size unknown",
                                      r["seed"] is not None and f"seed {r['seed']}") if x)
        out.append(f'<tr{" class=headline" if r["headline"] else ""}><td>{esc(r["model"])}'
                   f'<div class="meta">{esc(meta)}</div></td>'
                   f'<td class="nowrap">{esc(r["suite"])} · {esc(r["metric"])}'
                   f'<span class="muted" title="better direction">{arrow}</span></td>'
                   f'<td class="num">{esc(num(r["start"]))} → {esc(num(r["tuned"]))}</td>'
                   f'<td class="num">{esc(ci_text(r["diff"], r["ci95"]))}</td><td class="num">{esc(n_text(r))}</td>'
                   f'<td class="muted">{esc(p_text(r))}</td>'
                   f'<td class="muted">{esc(moved_items(r))}</td>'
                   f'<td class="num">{esc(per_example_text(r))}</td><td>{chip(r["verdict"], verdict_words(r))}</td></tr>')
    out.append('</tbody></table></div>')
    return "".join(out)


def effect_section(col: Collection, rows: list[dict]) -> str:
    out = ['<section id="effects"><h2>Effect per target</h2>',
           '<p>Each row pairs the tuned model with its starting model on the same items: <b>diff</b> = mean of '
           'per-item differences (tuned − start) with a paired 95% interval over <b>independent units</b> '
           '(<b>n</b>; the rows beside it where a unit holds several, e.g. one invariance question\'s wrapper '
           'families): units resampled with all their rows and a sign-flip test over units; 0/1 scores under 30 '
           'items: Newcombe\'s paired score interval and McNemar\'s exact test. <b>p</b> with its Holm adjustment '
           'over the model\'s compared metrics; <b>MDE</b> = the effect this n detects with 80% power. A metric '
           'is better or worse only where the interval excludes 0 and p &lt; 0.05; otherwise "no effect larger '
           'than X", X the interval\'s larger end. <b>effect per example</b> = diff ÷ the number of training rows, '
           'so sets of different sizes compare. ↑/↓ mark the better direction where one is plain; other metrics '
           'are reported as up or down only. Shown: one headline metric per suite; every metric is in the full '
           'table.</p>']
    head = [r for r in rows if r["headline"]]
    if head:
        out.append(_effect_table(head))
    else:
        out.append('<p class="muted">No paired comparison in these runs.</p>')
    if len(rows) > len(head):
        out.append(f'<details><summary>All {len(rows)} paired metrics</summary>{_effect_table(rows)}</details>')
    seeds = sorted({str(r["eval_seed"]) for r in rows})
    if seeds:
        out.append(f'<p class="meta">Bootstrap seed(s) of the eval runs: {esc(", ".join(seeds))}; greedy decoding. '
                   'Training seed under each model name.</p>')
    out.append('</section>')
    return "".join(out)


def page(col: Collection, proxy_tables: list[dict] | None = None) -> str:
    """``proxy_tables``: :func:`sharpset.report.proxy.tables` of ``col`` where the caller has them."""
    from . import baselines, proxy, sections, selections

    rows = effect_rows(col)
    title = col.title or "What the examples bought"
    shas = sorted({(r.manifest.get("git") or {}).get("sha") or "" for r in col.runs} - {""})
    dirty = any((r.manifest.get("git") or {}).get("dirty") for r in col.runs)
    sel = selections.selections_section(col)  # gates and pseudo-refusals: only with a curate run or a training set
    prox = proxy.proxy_section(col, proxy_tables)  # only where an eval run used --engine proxy
    vs = baselines.baselines_section(col)  # only where a sweep here compared its cells with random/quality-diversity
    body = [
        summary_section(col, rows),
        effect_section(col, rows),
        prox,
        vs,
        sections.size_section(col, rows),
        sections.invariance_section(col),
        sections.shape_section(col),
        sections.token_shift_section(col),
        sections.training_section(col),
        sections.answers_section(col),
        sections.constrain_section(col),  # only when a constrain run is here
        sel,
        sections.pipeline_section(col),
    ]
    toc = [("summary", "Summary"), ("effects", "Effect per target"), *([("proxy", "Proxy-tuning")] if prox else []),
           *([("baselines", "Against the baselines")] if vs else []),
           ("size", "Effect vs examples"),
           ("invariance", "Invariance"), ("shape", "Answer shape"), ("token-shift", "Token shift"),
           ("training", "Training"), ("answers", "Answers"),
           *([("constrain", "Constraint data")] if sections.constrain_runs(col) else []),
           *([("selections", "Training sets")] if sel else []), ("pipeline", "Pipeline")]
    roots = ", ".join(r.name for r in col.roots)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{esc(title)} · sharpset report</title>'
        f'<style>{CSS}</style></head><body><main>'
        '<header class="top"><div class="kicker">sharpset report</div>'
        f'<h1>{esc(title)}</h1><div class="meta">{len(col.runs)} run folder{"s" if len(col.runs) != 1 else ""} '
        f'under {esc(roots)} · {len(col.evals)} eval, {len(col.trains)} train · code '
        f'{esc(", ".join(s[:10] for s in shas) or "unknown")}{" (uncommitted changes)" if dirty else ""}</div>'
        '<nav class="toc">' + "".join(f'<a href="#{a}">{esc(b)}</a>' for a, b in toc) + '</nav></header>'
        + "".join(body)
        + '<footer>Every number above is read from the runs\' logged per-sample outputs (samples/*.jsonl, '
        'summary.json, losses.jsonl, manifest.json); intervals are 95% intervals over independent units '
        '(sharpset.stats), paired where two models are compared. Headline metric per suite: '
        + esc(", ".join(f"{k}: {v}" for k, v in HEADLINE.items()))
        + ' (when it has no paired items, the next with data: '
        + esc(", ".join(f"{k}: {' or '.join(v)}" for k, v in HEADLINE_FALLBACK.items())) + ').</footer>'
        '</main></body></html>\n')
