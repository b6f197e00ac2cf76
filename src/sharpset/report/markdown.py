"""``report.md``: the report's numbers as Markdown (summary, effect table, invariance by family,
a sweep's cells against its baselines, training, verified-constraint data per type, pipeline counts,
a few answers). Data text is escaped for Markdown *and* HTML (GitHub and most viewers render inline
HTML in Markdown), and table cells lose their pipes and newlines."""

from __future__ import annotations

import html

from .collect import NO_ANSWER_SUITES, Collection, answer_changes, drop_reasons, effect_rows, improved_counts, losses
from .html import ci_text, moved_items, n_text, num, p_text, per_example_text, verdict_words


def md(x) -> str:
    """Escaped inline text: HTML-escaped, Markdown punctuation that could start markup backslashed."""
    s = html.escape("" if x is None else str(x), quote=False)
    for ch in "\\`*_[]|#":
        s = s.replace(ch, "\\" + ch)
    return " ".join(s.split())


def _table(head: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(md(h) for h in head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]
    return out + [""]


def page(col: Collection, proxy_tables: list[dict] | None = None) -> str:
    """``proxy_tables``: :func:`sharpset.report.proxy.tables` of ``col`` where the caller has them."""
    rows = effect_rows(col)
    out = [f"# {md(col.title or 'What the examples bought')}", "",
           f"sharpset report over {len(col.runs)} run folders ({len(col.evals)} eval, {len(col.trains)} train).", ""]
    out += ["## Summary", "",
            "Each tuned model against its starting model on the same items: paired differences (tuned - start) with "
            "95% intervals over independent units (n; rows beside where a unit holds several); better/worse only "
            "where the interval excludes 0 and p < 0.05, else 'no effect larger than X' (X the interval's larger "
            "end). Improved counts stand beside their Holm-adjusted count over the model's compared metrics; a "
            "model whose answers do not end is never counted as improved.", ""]
    out += [f"> **Warning:** {md(w)}\n" for w in col.warnings]
    if not col.tuned:
        out += ["No eval run here holds a tuned model beside its starting model; no paired effects to report.", ""]
    for t in col.tuned:
        mine = [r for r in rows if r["eval_label"] == t.label and r["eval_run"] == t.where]
        out.append(f"### {md(t.display)}")
        out.append(f"target {md(t.target or 'not named')}, {md(t.n_examples or 'unknown')} training examples, "
                   f"seed {md(t.seed)}, compared with {md(t.base_label)} in {md(t.where)}.")
        out.append("")
        gate = next((r["health_gate"] for r in mine if r.get("health_gate")), None)
        k = improved_counts(mine)
        if gate:
            out.append(f"**Not summarised as improved:** {md(gate)} ({k['improved']} metrics moved the better way).")
        else:
            out.append(f"{k['compared']} paired metrics compared: {k['improved']} improved ({k['improved_holm']} after "
                       f"Holm adjustment for {k['tested']} comparisons).")
        out.append("")
        for r in sorted(mine, key=lambda r: (r["verdict"] in ("null", "n too small", "no-data"), not r["headline"])):
            if r["verdict"] == "no-data":
                continue
            out.append(f"- {md(r['suite'])} {md(r['metric'])}: {md(verdict_words(r))}, "
                       f"{md(num(r['start']))} -> {md(num(r['tuned']))}, diff {md(ci_text(r['diff'], r['ci95']))}, "
                       f"{md(n_text(r))}" + (f", {md(p_text(r))}" if p_text(r) else ""))
        nd = [f"{r['suite']} {r['metric']}" for r in mine if r["verdict"] == "no-data"]
        if nd:
            out.append(f"- no data (no paired items): {md(', '.join(nd))}")
        p = answer_changes(t)["pooled"]
        if p["n"]:
            out.append(f"- answers differing from the start: {p['k']} of {p['n']}"
                       + (" (identical to the start: learned nothing visible)" if p["k"] == 0 else
                          f" ({p['rate']:.0%}, 95% {p['ci95'][0]:.0%}-{p['ci95'][1]:.0%})"))
        out.append("")
    out += ["## Effect per target (headline metrics)", ""]
    out += _table(["model", "target", "n ex.", "seed", "suite", "metric", "start", "tuned", "diff [95% CI]", "n",
                   "p (Holm) · MDE", "items moved", "per example", "verdict"],
                  [[r["model"], r["target"] or "-", r["n_examples"] or "?", r["seed"], r["suite"], r["metric"],
                    num(r["start"]), num(r["tuned"]), ci_text(r["diff"], r["ci95"]), n_text(r), p_text(r),
                    moved_items(r), per_example_text(r), verdict_words(r)]
                   for r in rows if r["headline"]])
    from .proxy import proxy_md

    out += proxy_md(col, proxy_tables)
    from .baselines import baselines_md

    out += baselines_md(col)
    inv = []
    for t in col.tuned:
        for which, who in (("base", "start"), ("tuned", "tuned")):
            fams = t.result("invariance", which).get("extra", {}).get("by_family", {})
            for f, v in fams.items():
                c = v.get("flip") or {}
                inv.append([t.display, who, f, "held out" if v.get("heldout") else "trained", v.get("n"),
                            ci_text(c.get("mean"), c.get("ci95")).lstrip("+"), c.get("n", 0)])
    if inv:
        out += ["## Invariance: flip rate per wrapper family", ""]
        out += _table(["model", "which", "family", "split", "items", "flip [95% CI]", "n answered right plainly"], inv)
    if col.trains:
        out += ["## Training", ""]
        tr_rows = []
        for tr in col.trains:
            curve = losses(tr)
            ch = [answer_changes(t)["pooled"] for t in col.tuned if t.train is tr]
            diff = "; ".join(f"{p['k']}/{p['n']}" for p in ch if p["n"]) or "not evaluated"
            tr_rows.append([tr.name, tr.config.get("model"), tr.counts.get("written"), len(curve),
                            num(curve[0]["loss"]) if curve else "-", num(curve[-1]["loss"]) if curve else "-", diff])
        out += _table(["train run", "model", "rows", "steps", "first loss", "last loss", "answers differing"], tr_rows)
    from .sections import constrain_lines, constrain_rows, constrain_runs, rate_text

    for r in constrain_runs(col):
        k = r.config.get("k", "k")
        out += [f"## Verified-constraint data: {md(r.name)}", ""] + [md(x) for x in constrain_lines(r)] + [""]
        out += _table(["type", "split", "prompts", "pass@1", f"pass@{k}", "kept", "note"],
                      [[t["type"], t["split"], t["n"], rate_text(t["pass@1"]), rate_text(t["pass@k"]),
                        rate_text(t["kept"]), t["note"] or "-"] for t in constrain_rows(r)])
    from .selections import selections_md

    out += selections_md(col)
    out += ["## Pipeline counts", ""]
    out += _table(["run", "stage", "status", "read", "written", "dropped", "rejected", "drop reasons"],
                  [[r.name, r.stage, r.manifest.get("status"), r.counts.get("read", "-"), r.counts.get("written", "-"),
                    r.counts.get("dropped", "-"), r.counts.get("rejected", "-"),
                    "; ".join(f"{k}: {v}" for k, v in drop_reasons(r).items()) or "-"] for r in col.runs])
    for t in col.tuned[:2]:
        out += [f"## Answers: {md(t.display)} vs {md(t.base_label)}", ""]
        for sname in t.suites():
            if sname in NO_ANSWER_SUITES:
                continue
            base, mine = t.rows(sname, "base"), t.rows(sname, "tuned")
            for i in sorted(set(base) & set(mine), key=lambda i: (base[i].get("answer") == mine[i].get("answer"), i))[:2]:
                out += [f"**{md(sname)}** prompt: {md(base[i].get('prompt'))[:400]}", "",
                        f"> start: {md(base[i].get('answer'))[:600] or '(empty)'}", ">",
                        f"> tuned: {md(mine[i].get('answer'))[:600] or '(empty)'}", ""]
    return "\n".join(out) + "\n"
