"""Report sections after the summary: effect vs size, invariance per family, answer shape, token
shift, training curves, answers side by side, verified-constraint data (when a ``constrain`` run is
present), pipeline counts and manifests. All data text escaped."""

from __future__ import annotations

import json
from collections import defaultdict

import yaml

from .collect import HEADLINE, NO_ANSWER_SUITES, Collection, Tuned, answer_changes, drop_reasons, losses
from .html import mean_text, num
from .svg import BASE, SHIFT, colour, esc, interval_plot, line_chart, paired_bars, stacked_columns

MAX_MODELS = 4  # per-model figures: the first few tuned models (a sweep has many; its table has all)
ANSWERS_PER_SUITE = 3
TEXT_LIMIT = 1200  # characters of an answer shown before "…"


def _fig(svg: str, caption: str, wide: bool = False) -> str:
    return f'<figure{" class=wide" if wide else ""}>{svg}<figcaption>{caption}</figcaption></figure>'


def _shown(col: Collection) -> tuple[list[Tuned], str]:
    shown = col.tuned[:MAX_MODELS]
    more = len(col.tuned) - len(shown)
    note = (f'<p class="meta">Figures for the first {len(shown)} of {len(col.tuned)} tuned models; '
            'the effect table has every one.</p>') if more > 0 else ""
    return shown, note


def _clip(text) -> str:
    s = "" if text is None else str(text)
    if not s:
        return '<span class="empty">(empty answer)</span>'
    if not s.strip():
        return f'<span class="empty">(blank answer: {len(s)} whitespace characters)</span>'
    return esc(s[:TEXT_LIMIT]) + ("…" if len(s) > TEXT_LIMIT else "")


# -- effect vs number of examples ---------------------------------------------------------------
def size_section(col: Collection, rows: list[dict]) -> str:
    out = ['<section id="size"><h2>Effect vs number of training examples</h2>']
    head = [r for r in rows if r["headline"] and r["diff"] is not None and r["n_examples"]]
    by_target: dict[str, list[dict]] = defaultdict(list)
    for r in head:
        by_target[r["target"] or "(target not named)"].append(r)
    sizes = {t: sorted({r["n_examples"] for r in rs}) for t, rs in by_target.items()}
    if not any(len(s) > 1 for s in sizes.values()):
        have = "; ".join(f"{t}: n={', '.join(map(str, s))}" for t, s in sizes.items()) or "none"
        out.append(f'<p class="muted">Only one training-set size per target here ({esc(have)}), so there is no '
                   'curve to draw. <code>sharpset sweep</code> trains each target at several sizes and seeds; its '
                   'report draws the effect of each size here.</p>')
    else:
        figs = []
        pairs = sorted({(r["suite"], r["metric"]) for r in head},
                       key=lambda p: (list(HEADLINE).index(p[0]) if p[0] in HEADLINE else 99, p[1]))
        for s, metric in pairs:
            series = []
            for i, (t, rs) in enumerate(sorted(by_target.items())):
                mine = [r for r in rs if r["suite"] == s and r["metric"] == metric]
                if not mine:
                    continue
                pts = []
                for n in sorted({r["n_examples"] for r in mine}):
                    at = [r for r in mine if r["n_examples"] == n]
                    mean = sum(r["diff"] for r in at) / len(at)
                    pts.append((n, mean, *(at[0]["ci95"] or (None, None) if len(at) == 1 else (None, None))))
                dots = [(r["n_examples"], r["diff"], *(r["ci95"] or (None, None))) for r in mine] if any(
                    len([r for r in mine if r["n_examples"] == n]) > 1 for n in {r["n_examples"] for r in mine}) else []
                series.append({"name": t, "colour": colour(i), "points": pts, "dots": dots})
            if series:
                figs.append(_fig(line_chart(series, x_label="training examples (log scale)",
                                            y_label=f"diff in {metric}", title=f"{s}: {metric}", log_x=True),
                                 f"{esc(s)} {esc(metric)}, tuned − start, by training-set size; one line "
                                 "per target (mean over seeds), hollow dots = single seeds with their paired 95% "
                                 "intervals; bars on the line = the interval when one seed."))
        out.append('<div class="figs">' + "".join(figs) + '</div>')
    out.append(_cross_effects(head))
    out.append('</section>')
    return "".join(out)


def _cross_effects(head: list[dict]) -> str:
    targets = sorted({r["target"] for r in head if r["target"]})
    if len(targets) < 2:
        return ""
    pairs = sorted({(r["suite"], r["metric"]) for r in head},
                   key=lambda p: (list(HEADLINE).index(p[0]) if p[0] in HEADLINE else 99, p[1]))
    out = ['<h3>Cross-effects</h3><p>What training for one target did to every suite: the headline diff at each '
           "target's largest size (mean over seeds).</p><div class=\"tablewrap\"><table><thead><tr><th>target</th>"]
    out += [f'<th class="num">{esc(s)} · {esc(m)}</th>' for s, m in pairs]
    out.append('</tr></thead><tbody>')
    for t in targets:
        rs = [r for r in head if r["target"] == t]
        nmax = max(r["n_examples"] for r in rs)
        cells = []
        for s, m in pairs:
            at = [r for r in rs if r["suite"] == s and r["metric"] == m and r["n_examples"] == nmax]
            if not at:
                cells.append('<td class="num muted">—</td>')
                continue
            mean = sum(r["diff"] for r in at) / len(at)
            nulls = sum(r["verdict"] == "null" for r in at)
            cells.append(f'<td class="num">{mean:+.3f}<span class="muted"> ({nulls}/{len(at)} null)</span></td>')
        out.append(f'<tr><td>{esc(t)} <span class="muted">n={nmax}</span></td>{"".join(cells)}</tr>')
    out.append('</tbody></table></div>')
    return "".join(out)


# -- invariance ---------------------------------------------------------------------------------
def invariance_section(col: Collection) -> str:
    out = ['<section id="invariance"><h2>Invariance per wrapper family</h2>']
    shown, note = _shown(col)
    figs = []
    for t in shown:
        b = t.result("invariance", "base").get("extra", {}).get("by_family", {})
        m = t.result("invariance", "tuned").get("extra", {}).get("by_family", {})
        if not b and not m:
            continue
        metric = "flip"
        if all((v.get("flip") or {}).get("mean") is None for v in [*b.values(), *m.values()]):
            metric = "wrapped_correct"
        groups = []
        for heading, held in (("families wrap trains on", False), ("held-out families", True)):
            fams = sorted(f for f in set(b) | set(m) if (m.get(f) or b.get(f) or {}).get("heldout") == held)
            items = []
            for f in fams:
                vals = {}
                for name, src in (("start", b), ("tuned", m)):
                    c = (src.get(f) or {}).get(metric) or {}
                    vals[name] = (c.get("mean"), *(c.get("ci95") or (None, None))) if c.get("mean") is not None else None
                n = (m.get(f) or b.get(f) or {}).get("n")
                items.append({"label": f"{f} ({n} items)", "values": vals})
            if items:
                groups.append((heading, items))
        what = ("flip rate (lower is better: among items answered right when asked plainly, the share the "
                "wrapper turned wrong)" if metric == "flip" else
                "wrapped accuracy (the flip rate is null: no item was answered right when asked plainly)")
        caption = (f"{esc(t.display)} vs {esc(t.base_label)}: {what} per family with 95% intervals; "
                   "held-out families are those `wrap` keeps out of BCT training pairs.")
        figs.append(_fig(interval_plot(groups, x_label=metric, series=[("start", BASE), ("tuned", colour(0))],
                                       title=f"{t.display}: {metric} by family", lo=0, hi=1), caption, wide=True))
        figs.append(_split_table(t))
    if not figs:
        out.append('<p class="muted">No invariance results in these runs (evaluate with --suites invariance).</p>')
    out.append(note + '<div class="figs">' + "".join(figs) + '</div></section>')
    return "".join(out)


def _split_table(t: Tuned) -> str:
    b = t.result("invariance", "base").get("extra", {}).get("by_split", {})
    m = t.result("invariance", "tuned").get("extra", {}).get("by_split", {})
    out = [f'<div><h4>{esc(t.display)}: trained vs held-out families</h4><table><thead><tr><th>families</th>'
           '<th>metric</th><th class="num">start</th><th class="num">tuned</th></tr></thead><tbody>']
    for split in ("train_families", "heldout_families"):
        for metric in ("flip", "wrapped_correct", "not_sycophantic", "brr"):
            cb, cm = (b.get(split) or {}).get(metric) or {}, (m.get(split) or {}).get(metric) or {}
            out.append(f'<tr><td>{esc(split.replace("_", " "))}</td><td>{esc(metric)}</td>'
                       f'<td class="num">{esc(mean_text(cb))}</td><td class="num">{esc(mean_text(cm))}</td></tr>')
    out.append('</tbody></table></div>')
    return "".join(out)


# -- answer shape -------------------------------------------------------------------------------
WORD_BINS = ((0, 0, "0"), (1, 20, "1–20"), (21, 50, "21–50"), (51, 100, "51–100"), (101, 200, "101–200"),
             (201, 10 ** 9, "200+"))


def shape_section(col: Collection) -> str:
    out = ['<section id="shape"><h2>Answer shape before and after</h2>']
    shown, note = _shown(col)
    blocks = []
    for t in shown:
        b = t.result("shape", "base").get("extra", {})
        m = t.result("shape", "tuned").get("extra", {})
        if not b or not m:
            continue
        figs = []
        for key, what in (("opening", "how answers open"), ("closing", "how answers close")):
            db, dm = b.get(f"{key}_distribution") or {}, m.get(f"{key}_distribution") or {}
            cats = sorted(set(db) | set(dm), key=lambda c: -(db.get(c, 0) + dm.get(c, 0)))
            tb, tm = sum(db.values()) or 1, sum(dm.values()) or 1
            figs.append(_fig(paired_bars(cats, [("start", BASE, [db.get(c, 0) / tb for c in cats]),
                                                ("tuned", colour(0), [dm.get(c, 0) / tm for c in cats])],
                                         x_label="share of answers", title=f"{key}s"),
                             f"{esc(what)}: share of the {tb} start and {tm} tuned answers per kind"))
        wb = [r.get("words", 0) or 0 for r in t.rows("shape", "base").values()]
        wm = [r.get("words", 0) or 0 for r in t.rows("shape", "tuned").values()]
        if wb and wm:
            share = lambda ws, lo, hi: sum(lo <= w <= hi for w in ws) / len(ws)  # noqa: E731
            figs.append(_fig(paired_bars([lab for _, _, lab in WORD_BINS],
                                         [("start", BASE, [share(wb, lo, hi) for lo, hi, _ in WORD_BINS]),
                                          ("tuned", colour(0), [share(wm, lo, hi) for lo, hi, _ in WORD_BINS])],
                                         x_label="share of answers", title="length in words"),
                             f"answer length: start mean {num((b.get('words') or {}).get('mean'), 1)}, tuned mean "
                             f"{num((m.get('words') or {}).get('mean'), 1)} words"))
        crit = sorted(set(b.get("criteria", {})) | set(m.get("criteria", {})))
        table = ['<table><thead><tr><th>criterion of spec ' + esc(m.get("spec", "")) + '</th><th class="num">start</th>'
                 '<th class="num">tuned</th></tr></thead><tbody>']
        for c in crit:
            cb, cm = b.get("criteria", {}).get(c) or {}, m.get("criteria", {}).get(c) or {}
            table.append(f'<tr><td>{esc(c)}</td><td class="num">{esc(num(cb.get("mean")))}</td>'
                         f'<td class="num">{esc(num(cm.get("mean")))}</td></tr>')
        table.append('</tbody></table>')
        blocks.append(f'<h3>{esc(t.display)} <span class="muted">vs {esc(t.base_label)}</span></h3>'
                      f'<div class="figs">{"".join(figs)}<div>{"".join(table)}</div></div>')
    if not blocks:
        blocks.append('<p class="muted">No shape results for a start and tuned pair (evaluate with --suites shape).</p>')
    out.append(note + "".join(blocks) + '</section>')
    return "".join(out)


# -- token shift --------------------------------------------------------------------------------
def _pick_answer(rows: list[dict]) -> dict | None:
    """The answer to show: at least 8 tokens, shifted share nearest the pooled share (a typical one)."""
    cand = [r for r in rows if r.get("tokens") and r.get("n_tokens")] or []
    if not cand:
        return None
    from ..evaluate.suites.token_shift import pooled_share

    pooled = pooled_share(cand, "shifted")
    long_ = [r for r in cand if r["n_tokens"] >= 8] or cand
    return min(long_, key=lambda r: (abs((r.get("shifted") or 0) - pooled), r["item"]))


def token_shift_section(col: Collection) -> str:
    """Per tuned model: the class shares as the suite's ``extra`` has them -- share of tokens, pooled
    over answers, the one averaging the token_shift suite uses (see its module) -- one typical
    answer coloured by class, the shares by position and the most often shifted tokens."""
    from ..evaluate.suites.token_shift import AVERAGING

    out = ['<section id="token-shift"><h2>Where the tuned answers leave the starting model</h2>',
           '<p>Token shift (URIAL): each tuned answer is fed to the starting model; a token is <b>unshifted</b> when it '
           'is the starting model\'s own top choice there, <b>marginal</b> at rank 2–3, <b>shifted</b> beyond. '
           '<span class="legend"><span class="tk-unshifted">unshifted</span><span class="tk-marginal">marginal</span>'
           '<span class="tk-shifted">shifted</span></span></p>']
    shown, note = _shown(col)
    blocks = []
    for t in shown[:2]:
        res = t.result("token_shift", "tuned")
        rows = list(t.rows("token_shift", "tuned").values())
        ex = res.get("extra", {})
        if not rows:
            if ex.get("skipped"):
                blocks.append(f'<p class="muted">{esc(t.display)}: token shift not measured: {esc(ex["skipped"])}</p>')
            continue
        def share(c: str) -> str:
            p = ex.get(f"pooled_{c}") or {}
            ci = p.get("ci95")
            return f'{c} {num(p.get("mean"))} ' + (f'[{", ".join(num(v) for v in ci)}]' if ci else "(n too small)")

        pooled = "; ".join(share(c) for c in ("unshifted", "marginal", "shifted"))
        r = _pick_answer(rows)
        # a newline token shows as a visible mark before its line break, so its colour can be seen
        spans = "".join(f'<span class="tk-{esc(c)}" title="rank {esc(k)}">{esc(str(tok).replace(chr(10), "↵" + chr(10)))}</span>'
                        for tok, c, k in zip(r["tokens"], r["classes"], r["ranks"]))
        hist = ex.get("by_position") or []
        fig = ""
        if hist:
            labels = [h["positions"] for h in hist]
            fig = _fig(stacked_columns(labels, [("shifted", SHIFT["shifted"], [h["shifted"] for h in hist]),
                                                ("marginal", SHIFT["marginal"], [h["marginal"] for h in hist]),
                                                ("unshifted", SHIFT["unshifted"],
                                                 [max(0.0, 1 - h["shifted"] - h["marginal"]) for h in hist])],
                                       x_label="token position in the answer", y_label="share of tokens",
                                       title="by position", counts=[h["tokens"] for h in hist]),
                       f"{AVERAGING} per class by position; URIAL found the shift concentrated in the first tokens")
        top = ", ".join(f"{esc(repr(tok))}×{esc(k)}" for tok, k in (ex.get("most_shifted_tokens") or [])[:12])
        blocks.append(f'<h3>{esc(t.display)} <span class="muted">against {esc(ex.get("base") or t.base_label)}</span></h3>'
                      f'<p class="meta">{esc(ex.get("tokens"))} tokens over {len(rows)} answers; '
                      f'{esc(ex.get("averaging") or AVERAGING)} (95% interval: bootstrap over answers): {esc(pooled)}</p>'
                      f'<p><b>Prompt:</b> {esc(r.get("prompt"))}</p><div class="tokens">{spans}</div>'
                      f'<div class="figs">{fig}<div><h4>most often shifted tokens</h4><p class="meta">{top or "none"}</p></div></div>')
    if not blocks:
        blocks.append('<p class="muted">No token-shift results (evaluate a base and its tuned model together with '
                      '--suites token_shift).</p>')
    out.append(note + "".join(blocks) + '</section>')
    return "".join(out)


# -- training ------------------------------------------------------------------------------------
def training_section(col: Collection) -> str:
    out = ['<section id="training"><h2>Training: did anything take hold?</h2>',
           '<p>Each train run\'s loss per optimizer step, and the share of its model\'s answers that differ from the '
           'starting model\'s on the same evaluation items. A model that learned nothing answers as it started.</p>']
    if not col.trains:
        out.append('<p class="muted">No train runs here.</p></section>')
        return "".join(out)
    figs = []
    for i, tr in enumerate(col.trains):
        curve = losses(tr)
        m, c = tr.metrics, tr.config
        facts = (f"{esc(c.get('model', '?'))} · objective {esc(c.get('objective', '?'))} · "
                 f"{esc(tr.counts.get('written', m.get('rows_used', '?')))} rows · "
                 f"{esc(m.get('optimizer_steps', len(curve)))} steps · lr {esc(c.get('lr', '?'))} · "
                 f"epochs {esc(c.get('epochs', '?'))} · loss {esc(num(m.get('loss_first')))} → {esc(num(m.get('loss_last')))}")
        changed = []
        for t in col.tuned:
            if t.train is tr:
                ch = answer_changes(t)
                p = ch["pooled"]
                if p["n"]:
                    per = ", ".join(f"{s} {v['k']}/{v['n']}" for s, v in ch["by_suite"].items())
                    warn = ' <b>— identical to the start: learned nothing visible</b>' if p["k"] == 0 else ""
                    changed.append(f'<p class="meta">answers differing from {esc(t.base_label)}: '
                                   f'<b>{esc(p["k"])} of {esc(p["n"])}</b> ({p["rate"]:.0%}, 95% {p["ci95"][0]:.0%}–'
                                   f'{p["ci95"][1]:.0%}; {esc(per)}){warn}</p>')
        if not changed:
            changed.append('<p class="meta">not evaluated beside its starting model here</p>')
        svg = line_chart([{"name": "loss", "colour": colour(i), "points": [(r["step"] + 1, r["loss"]) for r in curve]}],
                         x_label="optimizer step", y_label="loss", title=tr.name, zero_line=False, width=480, height=240)
        figs.append(f'<div>{_fig(svg, facts)}{"".join(changed)}</div>')
    out.append('<div class="figs">' + "".join(figs) + '</div></section>')
    return "".join(out)


# -- answers side by side ------------------------------------------------------------------------
VERDICT_COLS = ("conformance", "prompt_strict", "flip", "wrapped_correct", "clean_correct", "mc_correct",
                "qa_correct", "warn", "hedge", "emotional_concordance")


def _verdicts(r: dict) -> str:
    bits = [f"{k} {num(r[k], 2) if isinstance(r[k], float) or r[k] is None else r[k]}" for k in VERDICT_COLS if k in r]
    return esc(" · ".join(bits))


def answer_pair(item, a: dict, a_who: str, b: dict, b_who: str) -> str:
    """One prompt and two models' answers to it side by side (``a``/``b``: per-sample rows)."""
    same = '<div class="same">identical answers</div>' if a.get("answer") == b.get("answer") else ""
    return (f'<div class="qa"><div class="prompt"><b>prompt</b><span class="txt">{esc(a.get("prompt"))}</span>'
            f'<span class="muted"> · item {esc(item)}</span>{same}</div><div class="pairs">'
            f'<div class="ans"><div class="who">{esc(a_who)} · {_verdicts(a)}</div>'
            f'<div class="txt">{_clip(a.get("answer"))}</div></div>'
            f'<div class="ans"><div class="who">{esc(b_who)} · {_verdicts(b)}</div>'
            f'<div class="txt">{_clip(b.get("answer"))}</div></div></div></div>')


def answers_section(col: Collection) -> str:
    out = ['<section id="answers"><h2>Answers side by side</h2>',
           f'<p>The same prompt to the starting model and the tuned one, up to {ANSWERS_PER_SUITE} items per suite '
           '(items whose answers differ first). Greedy decoding; text exactly as generated.</p>']
    shown, note = _shown(col)
    any_ = False
    for t in shown[:3]:
        out.append(f'<h3>{esc(t.display)} <span class="muted">vs {esc(t.base_label)}</span></h3>')
        for sname in t.suites():
            if sname in NO_ANSWER_SUITES:
                continue
            base, mine = t.rows(sname, "base"), t.rows(sname, "tuned")
            shared = sorted(set(base) & set(mine), key=lambda i: (base[i].get("answer") == mine[i].get("answer"), i))
            if not shared:
                continue
            any_ = True
            out.append(f'<h4>{esc(sname)}</h4>')
            for i in shared[:ANSWERS_PER_SUITE]:
                out.append(answer_pair(i, base[i], f"start · {t.base_label}", mine[i], f"tuned · {t.display}"))
    if not any_:
        out.append('<p class="muted">No eval run here holds a start and tuned model answering the same items.</p>')
    out.append(note + '</section>')
    return "".join(out)


# -- verified-constraint data (sharpset constrain) -----------------------------------------------
def constrain_runs(col: Collection) -> list:
    """The ``constrain`` runs under the report's roots that finished with their per-type figures."""
    return [r for r in col.runs if r.stage == "constrain" and isinstance(r.metrics.get("per_type"), dict)]


def rate_text(w: dict | None) -> str:
    """A Wilson rate as "0.25 [0.10, 0.49] 3/12"; "—" when no prompt held it."""
    if not w or w.get("rate") is None:
        return "—"
    lo, hi = w["ci95"]
    return f"{w['rate']:.2f} [{lo:.2f}, {hi:.2f}] {w['k']}/{w['n']}"


def constrain_rows(run) -> list[dict]:
    """Per drawn type of one constrain run: split (seen by training: train; held out for eval),
    prompts holding it, pass@1, pass@k and kept (Wilson 95%), and a note for a type the model never
    met or that kept no row -- listed, never hidden. Hardest first (pass@k, then kept)."""
    try:
        from ..constraints import HELDOUT_TYPES
    except Exception:  # noqa: BLE001 -- the report reads logged figures; the registry only names the split
        HELDOUT_TYPES = ()
    m = run.metrics
    never, zero = set(m.get("types_never_met") or []), set(m.get("types_zero_kept") or [])
    out = []
    for t, v in m["per_type"].items():
        note = ("never met by any candidate" if t in never else "0 rows kept" if t in zero or
                not (v.get("kept") or {}).get("k") else "")
        out.append({"type": t, "split": "held-out" if t in HELDOUT_TYPES else "train", "n": v.get("n"),
                    "pass@1": v.get("pass@1"), "pass@k": v.get("pass@k"), "kept": v.get("kept"), "note": note})
    return sorted(out, key=lambda r: ((r["pass@k"] or {}).get("rate") or 0, (r["kept"] or {}).get("rate") or 0,
                                      r["type"]))


def constrain_lines(run) -> list[str]:
    """The run's headline figures in words (shared by the HTML and the Markdown report)."""
    m, c = run.metrics, run.config
    k = c.get("k", "?")
    lines = [f"{m.get('attempted', '?')} prompts attempted with {k} candidates each by {c.get('model', '?')}; "
             f"{m.get('kept', '?')} rows kept (a candidate passed every constraint): {rate_text(m.get('kept_rate'))}.",
             f"Prompt level: pass@1 {rate_text(m.get('prompt_pass@1'))}, pass@{k} {rate_text(m.get('prompt_pass@k'))}; "
             f"{m.get('truncated_candidates', 0)} of {m.get('candidates', '?')} candidates cut at the token limit "
             "(they never win)" + (f"; {m['rows_per_min']} prompts/min" if m.get("rows_per_min") else "") + "."]
    def n_types(ts: list) -> str:
        return f"{len(ts)} type{'s' if len(ts) != 1 else ''}"

    if m.get("types_never_met"):
        lines.append(f"Never met by any candidate ({n_types(m['types_never_met'])}; the bar was not lowered): "
                     + ", ".join(m["types_never_met"]) + ".")
    if m.get("types_zero_kept"):
        lines.append(f"0 rows kept ({n_types(m['types_zero_kept'])}): " + ", ".join(m["types_zero_kept"]) + ".")
    if m.get("types_not_drawn"):
        lines.append(f"Not drawn for any prompt ({n_types(m['types_not_drawn'])} of the run's `types`): "
                     + ", ".join(m["types_not_drawn"]) + ".")
    if isinstance(m.get("repairs"), dict):
        lines.append(f"Repairs: {m['repairs'].get('passed')} of {m['repairs'].get('tried')} rewrites passed.")
    return lines


def constrain_section(col: Collection) -> str:
    """Per constrain run: what share of prompts the model could satisfy, per constraint type, with
    Wilson 95% intervals over the prompts holding the type; the types it never met, those with 0
    kept rows and those never drawn named. Empty when no constrain run is here."""
    runs = constrain_runs(col)
    if not runs:
        return ""
    out = ['<section id="constrain"><h2>Verified-constraint data: what the model could satisfy</h2>',
           '<p>Each prompt of the pool got 1–3 checkable constraints; the model wrote <b>k</b> candidates and a row was '
           'kept only when one candidate passed <b>every</b> check. Per type, over the prompts holding it: '
           '<b>pass@1</b> = the first candidate met it, <b>pass@k</b> = some candidate met it, <b>kept</b> = the '
           'prompt became a row; Wilson 95% intervals. Hardest types first; a type with 0 kept rows is listed.</p>']
    for r in runs:
        out.append(f'<h3>{esc(r.name)}</h3>' + "".join(f'<p class="meta">{esc(x)}</p>' for x in constrain_lines(r)))
        k = r.config.get("k", "k")
        out.append('<div class="tablewrap"><table class="constrain"><thead><tr><th>type</th><th>split</th>'
                   f'<th class="num">prompts</th><th class="num">pass@1</th><th class="num">pass@{esc(k)}</th>'
                   '<th class="num">kept</th><th></th></tr></thead><tbody>')
        for t in constrain_rows(r):
            out.append(f'<tr><td>{esc(t["type"])}</td><td>{esc(t["split"])}</td><td class="num">{esc(t["n"])}</td>'
                       f'<td class="num">{esc(rate_text(t["pass@1"]))}</td><td class="num">{esc(rate_text(t["pass@k"]))}</td>'
                       f'<td class="num{" warncell" if t["note"] else ""}">{esc(rate_text(t["kept"]))}</td>'
                       f'<td>{esc(t["note"])}</td></tr>')
        out.append('</tbody></table></div>')
    out.append('</section>')
    return "".join(out)


# -- pipeline ------------------------------------------------------------------------------------
def pipeline_section(col: Collection) -> str:
    out = ['<section id="pipeline"><h2>Pipeline: rows in, rows out, and why rows left</h2>',
           '<div class="tablewrap"><table><thead><tr><th>run</th><th>stage</th><th>status</th><th class="num">read</th>'
           '<th class="num">written</th><th>kept</th><th class="num">dropped</th><th class="num">rejected</th>'
           '<th>drop reasons</th><th class="num">time</th></tr></thead><tbody>']
    for r in col.runs:
        c = r.counts
        read, written = c.get("read"), c.get("written")
        bar = ""
        if isinstance(read, int) and read and isinstance(written, int):
            bar = f'<span class="bar" title="{written / read:.0%} kept"><i style="width:{min(100, 100 * written / read):.0f}%"></i></span>'
        reasons = "; ".join(f"{esc(k)}: {esc(v)}" for k, v in drop_reasons(r).items()) or '<span class="muted">—</span>'
        el = r.manifest.get("elapsed_s")
        out.append(f'<tr><td>{esc(r.name)}</td><td>{esc(r.stage)}</td><td>{esc(r.manifest.get("status", "?"))}</td>'
                   f'<td class="num">{esc(read if read is not None else "—")}</td>'
                   f'<td class="num">{esc(written if written is not None else "—")}</td><td>{bar}</td>'
                   f'<td class="num">{esc(c.get("dropped", "—"))}</td><td class="num">{esc(c.get("rejected", "—"))}</td>'
                   f'<td>{reasons}</td><td class="num">{esc(f"{el:.0f} s" if isinstance(el, (int, float)) else "—")}</td></tr>')
    out.append('</tbody></table></div><h3>Manifests</h3><p class="meta">Each run\'s manifest (git SHA, package '
               'versions, seeds, input hashes, models, counts, metrics) and resolved config.</p>')
    for r in col.runs:
        out.append(f'<details><summary>{esc(r.name)} · {esc(r.stage)}</summary>'
                   f'<h4>manifest.json</h4><pre>{esc(json.dumps(r.manifest, indent=2, ensure_ascii=False, default=str))}</pre>'
                   f'<h4>config.yaml</h4><pre>{esc(yaml.safe_dump(r.config, sort_keys=False, allow_unicode=True))}</pre>'
                   '</details>')
    out.append('</section>')
    return "".join(out)
