"""The audit page: ``sharpset report`` on a ``sharpset run audit`` folder writes ``audit.html``.

First the verdict table -- per claim its verdict (supported / contradicted / inconclusive / not
run), the rule that decided it, ours (the deciding comparison's paired difference with its 95%
interval), n items (rows), seeds, the MDE and the paper's figure -- then one section per claim with
its evidence: every comparison as a forest plot and a table, and the answers side by side of the
comparison the verdict reads (items whose answers differ first), from the arms' eval runs that
``audit.json`` names (reused runs in other folders included; a token-shift check's from the arm's
own token-shift run: its answers with the largest shifted share, shifted tokens marked). Every number is read from
``audit.json`` and the eval runs' per-sample outputs; all text from data is escaped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .html import chip, ci_text, num
from .sections import _fig, answer_pair
from .style import CSP, CSS
from .svg import colour, esc, interval_plot, mini_interval

CHIP = {"supported": "better", "contradicted": "worse", "inconclusive": "null", "not run": "no-data"}
ANSWERS = 3  # answer pairs shown per claim


def find_audits(paths: list[str | Path]) -> list[Path]:
    """Audit folders among ``paths`` and their direct subfolders (those holding an ``audit.json``)."""
    out: list[Path] = []
    for p in map(Path, paths):
        for d in [p, *(sorted(c for c in p.iterdir() if c.is_dir()) if p.is_dir() else [])]:
            if (d / "audit.json").is_file() and d.resolve() not in [o.resolve() for o in out]:
                out.append(d)
    return out


def _g(x: Any) -> str:
    return "-" if x is None else f"{x:.3g}" if isinstance(x, float) else str(x)


def _n(c: dict) -> str:
    if c.get("n") is None:
        return "-"
    return f"{c['n']}" + (f" ({c['n_rows']})" if c.get("n_rows") not in (None, c["n"]) else "")


def _ours(c: dict) -> str:
    if c.get("diff") is None:
        return '<span class="muted">-</span>'
    lo, hi = c.get("ci95") or (None, None)
    return (f'<div class="num">{esc(ci_text(c["diff"], c.get("ci95")))}</div>'
            + mini_interval(c["diff"], lo, hi, CHIP.get(c.get("verdict"), "null")))


def verdict_table(claims: list[dict]) -> str:
    head = ("claim", "verdict", "rule", "ours: diff [95% CI]", "n items (rows)", "seeds", "MDE", "paper's figure")
    out = ['<div class="tablewrap"><table class="effects"><thead><tr>'
           + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for c in claims:
        p = c.get("paper") or {}
        paper = (f'<b>arXiv:{esc(p["arxiv"])}</b> · ' if p.get("arxiv") else "") + esc(p.get("figure") or "-")
        out.append(f'<tr><td><a href="#claim-{esc(c["claim"])}">{esc(c["claim"])}. {esc(c["title"])}</a></td>'
                   f'<td>{chip(CHIP.get(c["verdict"], "null"), c["verdict"])}' + (
                       f'<div class="meta">{esc(c["verdict_text"])}</div>'
                       if c.get("verdict_text") not in (None, c["verdict"]) else "") + '</td>'
                   f'<td class="meta">{esc(c.get("rule") or "-")}</td><td>{_ours(c)}</td>'
                   f'<td class="num">{esc(_n(c))}</td><td class="num">{esc(c.get("seeds", "-"))}</td>'
                   f'<td class="num">{esc(_g(c.get("mde")))}</td><td class="meta">{paper}</td></tr>')
    out.append("</tbody></table></div>")
    return "".join(out)


def _check_rows(checks: list[dict]) -> str:
    head = ("comparison", "decides", "reference → treatment", "diff [95% CI]", "p (Holm)", "n (rows)", "MDE",
            "verdict")
    out = ['<div class="tablewrap"><table><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for k, r in enumerate(checks, 1):
        x = r.get("comparison") or {}
        p = "-" if x.get("p") is None else f"{x['p']:.2g} ({_g(r.get('p_holm'))})"
        out.append(f'<tr><td><b>#{k}</b> {esc(r["check"])}</td><td>{"yes" if r["decides"] else "no"}</td>'
                   f'<td class="num">{esc(num(x.get("a")))} → {esc(num(x.get("b")))}</td>'
                   f'<td>{_ours({**x, "verdict": r["verdict"]})}</td><td class="num">{esc(p)}</td>'
                   f'<td class="num">{esc(_n(x))}</td><td class="num">{esc(_g(x.get("mde")))}</td>'
                   f'<td>{chip(CHIP.get(r["verdict"], "null"), r["verdict_text"])}</td></tr>')
    out.append("</tbody></table></div>")
    return "".join(out)


def _forest(c: dict) -> str:
    groups = []
    for heading, decides in (("deciding comparisons", True), ("evidence", False)):
        items = []
        for k, r in enumerate(c["checks"], 1):  # numbered as in the table below (the plot's labels are short)
            x = r.get("comparison") or {}
            if r["decides"] != decides:
                continue
            lo, hi = x.get("ci95") or (None, None)
            items.append({"label": f"#{k} {r['suite']}/{r['metric']}"[:30],
                          "values": {"diff": (x["diff"], lo, hi) if x.get("diff") is not None else None}})
        if items:
            groups.append((heading, items))
    if not groups:
        return ""
    svg = interval_plot(groups, x_label="paired difference, treatment − reference (95% interval)",
                        series=[("diff", colour(0))], title=f"claim {c['claim']}: every comparison")
    return _fig(svg, "Each comparison's paired difference with its 95% interval (seeds pooled, items resampled). "
                     f"Non-inferiority reads the interval against −margin ({esc(_g(c.get('margin')))}), "
                     "superiority against 0; a flip rate is better lower."
                + (" A token-shift check plots its share minus the threshold (below 0: below it)."
                   if any(r.get("rule") == "below" for r in c["checks"]) else "")
                + (" A gap-share check plots the share of the gap closed itself, read against its threshold."
                   if any(r.get("rule") == "gap-share" for r in c["checks"]) else ""), wide=True)


def _samples(root: Path, arm: dict | None, suite: str, seed: Any) -> tuple[dict[str, dict], Any]:
    """(item -> row of ``suite``, the seed used) of an arm's eval run at ``seed`` (its first where it has
    no such seed; untrained arms have one run, seed None)."""
    runs = ((arm or {}).get("suite_evals") or {}).get(suite) or (arm or {}).get("evals") or []
    run = next((e for e in runs if e.get("seed") == seed), runs[0] if runs else None)
    if not run:
        return {}, None
    f = (root / run["run"] if not Path(run["run"]).is_absolute() else Path(run["run"])) / "samples" / f"{suite}.jsonl"
    if not f.is_file():
        return {}, run.get("seed")
    rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {str(r["item"]): r for r in rows if "answer" in r}, run.get("seed")


def _answers(root: Path, res: dict, c: dict) -> str:
    """The lead comparison's answers side by side: reference arm vs treatment arm on the same items."""
    from ..pipelines.claims import where_holds

    lead = next((r for r in c["checks"] if r["check"] == c.get("lead")), None)
    if lead is None:
        return ""
    arms = res.get("arms") or {}
    if not lead["a"]:  # read against a threshold: one arm's answers, the most shifted first
        return _shifted_answers(root, arms.get(lead["b"]), lead, (res.get("seeds") or [None])[0])
    b_rows, seed = _samples(root, arms.get(lead["b"]), lead["suite"], (res.get("seeds") or [None])[0])
    a_rows, _ = _samples(root, arms.get(lead["a"]), lead["suite"], seed)
    shared = sorted((i for i in set(a_rows) & set(b_rows) if where_holds(a_rows[i], lead.get("where") or {})),
                    key=lambda i: (a_rows[i].get("answer") == b_rows[i].get("answer"), i))
    if not shared:
        return '<p class="muted">No answers to show for this comparison (no shared items in its eval runs).</p>'
    s = "" if seed is None else f" (seed {seed})"
    out = [f'<h4>Answers side by side: {esc(lead["check"])}{esc(s)}</h4>']
    out += [answer_pair(i, a_rows[i], f"reference · {lead['a']}", b_rows[i], f"treatment · {lead['b']}")
            for i in shared[:ANSWERS]]
    return "".join(out)


def _shifted_answers(root: Path, arm: dict | None, lead: dict, seed: Any) -> str:
    """A token-shift check's answers with the largest per-answer share of ``lead``'s class, its tokens
    of that class marked (the arm's own token-shift eval run)."""
    rows, seed = _samples(root, arm, lead["suite"], seed)
    metric = lead["metric"]
    cls = metric if metric in ("unshifted", "marginal", "shifted") else "shifted"
    top = sorted((r for r in rows.values() if r.get(metric) is not None and r.get("tokens")),
                 key=lambda r: (-r[metric], str(r["item"])))[:ANSWERS]
    if not top:
        return '<p class="muted">No answers to show for this comparison (no token-shift rows in its eval run).</p>'
    s = "" if seed is None else f" (seed {seed})"
    out = [f'<h4>{esc(lead["b"])}: the answers with the largest {esc(cls)} share{esc(s)}, ranked by the base '
           f'(<span class="tk-{esc(cls)}">{esc(cls)}</span> tokens marked)</h4>']
    for r in top:
        marked = "".join(f'<span class="tk-{esc(k)}">{esc(t)}</span>' if k == cls else esc(t)
                         for t, k in zip(r["tokens"], r.get("classes") or []))
        out.append(f'<div class="qa"><div class="prompt"><b>prompt</b><span class="txt">{esc(r.get("prompt"))}</span>'
                   f'<span class="muted"> · item {esc(r["item"])} · {esc(cls)} {esc(num(r[metric]))} of '
                   f'{esc(r.get("n_tokens"))} tokens</span></div><div class="tokens">{marked}</div></div>')
    return "".join(out)


def claim_section(root: Path, res: dict, c: dict) -> str:
    out = [f'<section id="claim-{esc(c["claim"])}"><h2>{esc(c["claim"])}. {esc(c["title"])} '
           f'{chip(CHIP.get(c["verdict"], "null"), c["verdict"])}</h2>',
           f'<p class="lede">{esc(c.get("verdict_text") or c["verdict"])}'
           + (f' -- ours is the comparison the verdict reads: {esc(c["lead"])}' if c.get("lead") else "") + '.</p>']
    p = c.get("paper") or {}
    arxiv = f" (arXiv:{p['arxiv']})" if p.get("arxiv") else ""
    out.append(f'<p><b>The paper</b>{esc(arxiv)}: {esc(p.get("figure") or "-")}</p>')
    if c.get("rule"):
        out.append(f'<p class="meta"><b>Rule</b>: {esc(c["rule"])}.</p>')
    if "pool_yield" in c:
        y = c["pool_yield"]
        out.append('<p class="meta">Pool yield: not measured (a given pool, not synthesised here).</p>' if not y else
                   f'<p><b>Pool yield</b>: {esc(y["kept"])} clean distinct rows of {esc(y["attempts"])} synth attempts '
                   f'= {esc(num(y["rate"]))} [{esc(num(y["ci95"][0]))}, {esc(num(y["ci95"][1]))}] (Wilson).</p>')
    if c.get("checks"):
        out += [_forest({**c, "margin": res.get("margin")}), _check_rows(c["checks"]), _answers(root, res, c)]
    out.append("</section>")
    return "".join(out)


def page(root: str | Path) -> str:
    """The audit page of the audit folder ``root`` (its ``audit.json``)."""
    root = Path(root)
    res = json.loads((root / "audit.json").read_text(encoding="utf-8"))
    claims = res.get("claims") or []
    title = f"sharpset audit ({res.get('size', '?')}): the claims re-tested"
    reused = res.get("reused") or []
    notes = [f"Non-inferiority margin {_g(res.get('margin'))}; {res.get('holm', '')}; seeds {res.get('seeds')}."]
    if reused:
        notes.append(f"{len(reused)} stage runs read from finished runs elsewhere with the same content key: "
                     + "; ".join(f"{u['step']} ← {u['run']}" for u in reused) + ".")
    toc = [("verdicts", "Verdicts")] + [(f"claim-{c['claim']}", f"{c['claim']}. {c['title']}") for c in claims]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{esc(title)}</title><style>{CSS}</style></head>'
        '<body><main>'
        '<header class="top"><div class="kicker">sharpset report · audit</div>'
        f'<h1>{esc(title)}</h1><div class="meta">{esc(root.name)} · {len(claims)} claims</div>'
        '<nav class="toc">' + "".join(f'<a href="#{esc(a)}">{esc(b)}</a>' for a, b in toc) + '</nav></header>'
        '<section id="verdicts"><h2>Verdicts</h2>'
        '<p>Each claim decided by the rule beside it, never by hand: supported when every deciding comparison '
        'is, contradicted when any is, inconclusive otherwise (with the effect this n could have detected, the '
        '<b>MDE</b> at 80% power), not run with the reason. <b>Ours</b>: the paired difference of the comparison '
        'the verdict reads, treatment − reference, with its 95% interval over items (seeds pooled).</p>'
        + verdict_table(claims) + "".join(f'<p class="meta">{esc(n)}</p>' for n in notes) + '</section>'
        + "".join(claim_section(root, res, c) for c in claims)
        + '<footer>Every number is read from audit.json and the arms\' eval runs (samples/*.jsonl); intervals '
        'are paired 95% intervals over items (sharpset.stats), p values Holm-adjusted across the audit.</footer>'
        '</main></body></html>\n')


def write_pages(paths: list[str | Path], out: str | Path) -> list[str]:
    """``audit.html`` in ``out`` for the audit folder among ``paths`` (``audit-<folder>.html`` each
    where there are several); their paths."""
    from ..dataio import write_text

    found = find_audits(paths)
    names = ["audit.html"] if len(found) == 1 else [f"audit-{d.name}.html" for d in found]
    return [str(write_text(Path(out) / name, page(d))) for d, name in zip(found, names)]
