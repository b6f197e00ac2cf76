"""The audit's verdicts (``sharpset run audit``): each claim's comparisons paired, adjusted, judged
by the rule its registry entry states (:mod:`sharpset.pipelines.claims`), never by hand.

- **superiority** (the treatment arm better than the reference on a metric with a better direction):
  :func:`sharpset.stats.verdict` of the paired comparison with its **Holm-adjusted** p (across every
  comparison this audit made): "better" -> supported, "worse" -> contradicted, otherwise
  inconclusive ("inconclusive at this power (MDE X)" in words, X the minimum detectable effect at
  80% power at this n);
- **non-inferiority** with a stated ``margin`` (absolute, on the metric's scale): the treatment is
  no worse than the reference by more than the margin. The same 95% interval read against
  ``-margin`` instead of 0 (:func:`sharpset.stats.verdict` of the interval shifted by the margin,
  judged by the interval alone): lower end above ``-margin`` -> supported, upper end below
  ``-margin`` -> contradicted, else inconclusive.
- **equivalence** with the same ``margin`` (claim 7: a target leaves the other dimension where it
  was): non-inferior both ways -- the interval wholly inside (-margin, +margin) -> supported, wholly
  beyond either end -> contradicted, else inconclusive with the MDE.
- **below** a stated ``threshold`` (claim 8, URIAL's token shift): the treatment arm's per-answer
  share (each answer one unit, seeds pooled per item) against the threshold as a paired comparison
  with a constant reference (:func:`sharpset.evaluate.pairing.compare_rows`, so
  :func:`sharpset.stats.paired_diff_ci`: diff = share - threshold, its bootstrap interval over
  answers, the sign-flip p, the MDE), judged as superiority with lower better, Holm-adjusted with
  the rest: the interval wholly below the threshold -> supported, wholly above -> contradicted,
  else inconclusive with the MDE.
- **gap-share** above a stated ``threshold`` (claim 9, proxy-tuning): the share of the tuned - base
  gap the steered arm closes, (proxy - base) / (tuned - base) on the same items with the three
  arms' units resampled jointly (:func:`sharpset.evaluate.pairing.gap_share_rows`, so
  :func:`sharpset.stats.gap_share_ci`), its interval read against the threshold
  (:func:`sharpset.stats.verdict` of the interval shifted by it, as non-inferiority): wholly above
  -> supported, wholly below -> contradicted; undefined where the tuned - base gap itself is not
  shown, and then inconclusive with that reason (the MDE beside it is the gap's).

A claim is supported when every deciding comparison is, contradicted when any is, "not run" (with
the reason) when none could run, and inconclusive otherwise. The other comparisons are evidence,
printed beside it. A claim whose parts are missing (``needs``) reads "not run: needs ..." -- never a
verdict; one the audit's size leaves out reads "not run at size ..." with the command that runs it.
The machine field ``verdict`` is exactly one of :data:`VERDICTS` (issue 23's words);
``verdict_text`` says the same in words, with the MDE where inconclusive. The claim's row (diff,
interval, n, seeds, MDE) is one deciding comparison's, :func:`lead_check`: each suite is evaluated
on the items its own comparisons need, so n and MDE differ between a claim's comparisons, and the
MDE printed beside an inconclusive verdict is that of the comparison whose n the row shows.

Seeds pool per item: the comparison pairs ``seed:item`` rows and resamples *items* (a row's unit),
so ``n`` counts items and ``n_rows`` items x seeds.
"""

from __future__ import annotations

from typing import Any

from .claims import BELOW, EQ, GAP, NI, Check, Claim, checks_of, chosen, where_holds

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "supported", "contradicted", "inconclusive", "not run"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN)


def joined(ch: Check, evals: dict[str, dict[int | None, dict]], seeds: list[int]
           ) -> tuple[list[dict[str, dict]], int, int]:
    """The rows of ``ch``'s arms (:attr:`Check.arms`, in order) joined over the seeds as ``seed:item``
    rows on the items all of them have (the first arm's rows where ``where`` holds, each keeping its
    own unit, :func:`sharpset.evaluate.pairing.unit_of`, so items are resampled with every seed's
    rows); the metric's direction; the seeds used."""
    from ..evaluate.pairing import unit_of
    from ..evaluate.suite import direction

    names = ch.arms
    out: list[dict[str, dict]] = [{} for _ in names]
    used, d = 0, 0
    for s in seeds:
        got = [evals[n].get(s, evals[n].get(None)) for n in names]
        if not all(e and ch.suite in e for e in got):
            continue
        d = ch.better or direction(ch.suite, ch.metric, got[0][ch.suite]["lower"])
        rows = [e[ch.suite]["rows"] for e in got]
        for item in set(rows[0]).intersection(*rows[1:]):
            if where_holds(rows[0][item], ch.where):
                out[0][f"{s}:{item}"] = {**rows[0][item], "unit": unit_of(rows[0][item])}
                for k in range(1, len(names)):
                    out[k][f"{s}:{item}"] = rows[k][item]
        used += 1
    return out, d, used


def compare_check(ch: Check, evals: dict[str, dict[int | None, dict]], seeds: list[int], seed: int
                  ) -> tuple[dict | None, int, int]:
    """(the comparison of ``ch``, its direction, seeds pooled) on the rows :func:`joined` gives:
    :func:`sharpset.evaluate.pairing.compare_rows` of b against a; ``below``: of b's rows against the
    constant ``threshold`` (each row its own answer's share, unweighted: answers are the units), lower
    better; ``gap-share``: :func:`sharpset.evaluate.pairing.gap_share_rows` of base (a), proxy (b) and
    tuned, with ``diff`` = the share, ``a`` / ``b`` / ``tuned`` the three means, ``mde`` the gap's
    and ``undefined`` where the gap is not shown."""
    from ..evaluate.pairing import compare_rows, gap_share_rows

    rows, d, used = joined(ch, evals, seeds)
    if not rows[0]:
        return None, d, used
    if ch.rule == BELOW:
        ref = {k: {"item": k, ch.metric: ch.threshold, "unit": r["unit"]} for k, r in rows[0].items()}
        return (compare_rows(ref, rows[0], [ch.metric], seed) or {}).get(ch.metric), -1, used
    if ch.rule == GAP:
        g = (gap_share_rows(rows[0], rows[1], rows[2], [ch.metric], seed) or {}).get(ch.metric)
        if not g:
            return None, d, used
        return {**g, "diff": g["share"], "p": None, "mde": g["gap"].get("mde"), "a": g["gap"].get("a"),
                "b": g["moved"].get("b"), "tuned": g["gap"].get("b"), "undefined": g["share"] is None}, d, used
    return (compare_rows(rows[0], rows[1], [ch.metric], seed) or {}).get(ch.metric), d, used


def judge(c: dict | None, direction: int, rule: str, margin: float, p_holm: float | None,
          threshold: float | None = None) -> tuple[str, str]:
    """(verdict, its text) of one comparison by its rule (the module docstring), through
    :func:`sharpset.stats.verdict` only. ``below``: superiority with lower better (``direction``
    -1, as :func:`compare_check` gives it); ``gap-share``: the share's interval read against
    ``threshold`` as non-inferiority reads its interval against -margin."""
    from ..stats import verdict

    if rule == EQ:  # non-inferior both ways: within the margin of the reference, up or down
        ways = [judge(c, d, NI, margin, p_holm)[0] for d in (1, -1)]
        if ways == [SUPPORTED, SUPPORTED]:
            return SUPPORTED, SUPPORTED
        if CONTRADICTED in ways:
            return CONTRADICTED, CONTRADICTED
        return INCONCLUSIVE, inconclusive_text((c or {}).get("mde"))
    if rule == GAP:
        if c and c.get("undefined"):
            return INCONCLUSIVE, f"inconclusive: share of the gap closed {c.get('note') or 'undefined'}"
        direction, margin = 1, -(threshold or 0.0)
    if rule in ("superiority", BELOW):
        v = verdict(None if c is None else {**c, "p": p_holm if p_holm is not None else c.get("p")}, direction)
    elif c and c.get("ci95"):  # the interval read against -margin: shifted by the margin, no p at 0
        lo, hi = sorted(direction * x + margin for x in c["ci95"])
        v = verdict({**c, "diff": direction * c["diff"] + margin, "ci95": [lo, hi], "p": None}, 1)
    else:
        v = verdict(c, 1)
    if v == "better":
        return SUPPORTED, SUPPORTED
    if v == "worse":
        return CONTRADICTED, CONTRADICTED
    mde = (c or {}).get("mde")
    if rule == GAP and c and c.get("note"):  # a share whose interval is unbounded: say why
        return INCONCLUSIVE, f"{inconclusive_text(mde)}; {c['note']}"
    return INCONCLUSIVE, inconclusive_text(mde)


def inconclusive_text(mde: float | None) -> str:
    """An inconclusive verdict in words: how large an effect this n could have detected."""
    return f"inconclusive at this power ({f'MDE {mde:.3g}' if mde is not None else 'n too small'})"


def combine(verdicts: list[str]) -> str:
    """A claim's verdict from its deciding comparisons' verdicts."""
    ran = [v for v in verdicts if v != NOT_RUN]
    if not ran:
        return NOT_RUN
    if CONTRADICTED in ran:
        return CONTRADICTED
    return SUPPORTED if all(v == SUPPORTED for v in ran) and len(ran) == len(verdicts) else INCONCLUSIVE


def rule_text(ch: Check, margin: float, d: int) -> str:
    better = {1: "higher is better", -1: "lower is better", 0: "no better direction"}[d]
    if ch.rule == BELOW:
        return (f"{ch.b}'s per-answer {ch.metric} share of its tokens, ranked by the base (URIAL: rank 1 unshifted, "
                f"> 3 shifted), below {ch.threshold:g} (diff = share - {ch.threshold:g}; 95% CI over answers wholly "
                f"below 0 and Holm-adjusted p < 0.05; wholly above: contradicted)")
    if ch.rule == GAP:
        return (f"{ch.b} closes more than {ch.threshold:g} of the {ch.tuned} - {ch.a} gap on {ch.suite}/{ch.metric} "
                f"(diff = ({ch.b} - {ch.a}) / ({ch.tuned} - {ch.a}) on the same items, 95% CI with the three arms' "
                f"items resampled jointly wholly above {ch.threshold:g}; wholly below: contradicted; undefined, "
                f"so inconclusive, unless the {ch.tuned} - {ch.a} gap itself is shown)")
    w = "".join(f" [{k}={v}]" for k, v in ch.where)
    if ch.rule == EQ:
        return (f"{ch.b} within {margin:g} of {ch.a} on {ch.suite}/{ch.metric}{w} either way (95% CI inside "
                f"(-{margin:g}, +{margin:g}); wholly beyond either end: contradicted)")
    if ch.better:  # the direction the claim predicts, for a metric with none of its own (a speech-act rate)
        way, other = ("higher", "lower") if ch.better > 0 else ("lower", "higher")
        if ch.rule == "superiority":
            return (f"{ch.b} {way} than {ch.a} on {ch.suite}/{ch.metric}{w} (the direction the claim predicts; "
                    f"Holm-adjusted p < 0.05, 95% CI excludes 0; {other}: contradicted)")
        return (f"{ch.b} no {other} than {ch.a} on {ch.suite}/{ch.metric}{w} by more than {margin:g} "
                f"(95% CI's {other} end under +{margin:g})")
    if ch.rule == "superiority":
        return f"{ch.b} better than {ch.a} on {ch.suite}/{ch.metric} ({better}; Holm-adjusted p < 0.05, 95% CI excludes 0)"
    return (f"{ch.b} no worse than {ch.a} on {ch.suite}/{ch.metric} by more than {margin:g} "
            f"({better}; 95% CI's worse end above -{margin:g})")


def summarize(cfg: AuditConfig, evals: dict, seeds: list[int], skipped: dict[str, str],
              pool_yield: dict | None) -> dict[str, Any]:
    """Every chosen claim's checks compared, Holm-adjusted across the audit, judged and combined."""
    from ..stats import holm

    run_ids = cfg.claim_ids()
    results: list[tuple[Claim, Check, dict]] = []
    for claim in chosen(run_ids):
        for ch in checks_of(claim, cfg.alphas) if not claim.needs else ():
            why = next((skipped[n] for n in ch.arms if skipped.get(n)), None)
            c, d, used = (None, 0, 0) if why else compare_check(ch, evals, seeds, cfg.seed)
            results.append((claim, ch, {"check": ch.label, "decides": ch.decides, "a": ch.a, "b": ch.b,
                                        "suite": ch.suite, "metric": ch.metric, "where": dict(ch.where),
                                        "rule": ch.rule, "margin": cfg.margin if ch.rule in (NI, EQ) else None,
                                        **({"tuned": ch.tuned} if ch.tuned else {}),
                                        **({"threshold": ch.threshold} if ch.threshold is not None else {}),
                                        "direction": d, "comparison": c, "seeds": used, "not_run": why}))
    adj = holm([r["comparison"]["p"] if r["comparison"] else None for _, _, r in results])
    for (claim, ch, r), p in zip(results, adj):
        c = r["comparison"]
        r["p_holm"] = p
        r["rule_text"] = rule_text(ch, cfg.margin, r["direction"])
        if r["not_run"]:
            r["verdict"], r["verdict_text"] = NOT_RUN, f"not run: {r['not_run']}"
        elif not c:
            r["verdict"], r["verdict_text"] = NOT_RUN, "not run: no paired rows"
        else:
            r["verdict"], r["verdict_text"] = judge(c, r["direction"], ch.rule, cfg.margin, p, ch.threshold)
    claims_out = []
    for claim in chosen(cfg.listed_ids()):
        paper = {"arxiv": claim.arxiv or None, "figure": claim.figure}
        if claim.needs or claim.id not in run_ids:
            why = f"not run: needs {claim.needs}" if claim.needs else cfg.held_back_text(claim.id)
            claims_out.append({"claim": claim.id, "title": claim.title, "verdict": NOT_RUN,
                               "verdict_text": why, "paper": paper, "checks": []})
            continue
        mine = [r for c, _, r in results if c is claim]
        deciding = [r for r in mine if r["decides"]]
        v = combine([r["verdict"] for r in deciding])
        lead = lead_check(deciding, v)
        c = lead["comparison"] or {}
        if v == INCONCLUSIVE and lead["verdict"] == INCONCLUSIVE and lead["rule"] == GAP:
            text = lead["verdict_text"]  # the share's own reason (undefined: the gap is not shown), with its words
        elif v == INCONCLUSIVE and lead["verdict"] != INCONCLUSIVE:  # none inconclusive: one did not run
            why = next(r["verdict_text"] for r in deciding if r["verdict"] == NOT_RUN).removeprefix("not run: ")
            text = f"inconclusive: a deciding comparison did not run ({why})"
        elif v == INCONCLUSIVE:
            text = (inconclusive_text(c["mde"]) if c.get("mde") is not None else
                    "inconclusive: a deciding comparison did not run" if any(r["verdict"] == NOT_RUN for r in deciding)
                    else inconclusive_text(None))
        elif v == NOT_RUN:
            text = lead["verdict_text"]
        else:
            text = v
        out = {"claim": claim.id, "title": claim.title, "verdict": v, "verdict_text": text,
               "rule": "supported when every deciding comparison is: " + "; ".join(r["rule_text"] for r in deciding),
               "lead": lead["check"], "diff": c.get("diff"), "ci95": c.get("ci95"), "p": c.get("p"),
               "p_holm": lead["p_holm"], "n": c.get("n"), "n_rows": c.get("n_rows"), "seeds": lead["seeds"],
               "mde": c.get("mde"), "paper": paper, "checks": mine}
        if claim.yield_:
            out["pool_yield"] = pool_yield
        claims_out.append(out)
    return {"claims": claims_out, "margin": cfg.margin, "seeds": seeds, "comparisons": len(results),
            "holm": f"Holm step-down over the {sum(1 for *_, r in results if r['comparison'])} comparisons that ran"}


def lead_check(deciding: list[dict], v: str) -> dict:
    """The deciding comparison a claim's row reads (its diff, interval, n, seeds and MDE all come from
    it): the first with the claim's verdict; where inconclusive, the inconclusive one with the largest
    MDE -- the one that most needs more data. The suites differ in n (each sized for its own
    comparisons), so the row's MDE and n must be one comparison's, never one's MDE beside another's n."""
    same = [r for r in deciding if r["verdict"] == v]
    if v == INCONCLUSIVE:
        undefined = [r for r in same if (r["comparison"] or {}).get("undefined")]
        if undefined:  # a gap share undefined: its reason is what the claim needs first (the gap shown)
            return undefined[0]
        sized = [r for r in same if (r["comparison"] or {}).get("mde") is not None]
        if sized:
            return max(sized, key=lambda r: r["comparison"]["mde"])
    return same[0] if same else deciding[0]


def _g(x: Any) -> str:
    return "-" if x is None else f"{x:.3g}" if isinstance(x, float) else str(x)


def format_markdown(result: dict[str, Any], cfg: AuditConfig) -> str:
    def ci(c):
        return f"[{c[0]:.3f}, {c[1]:.3f}]" if c else "(n too small)"

    def ours(c):
        return "-" if c.get("diff") is None else f"{c['diff']:+.3f} {ci(c.get('ci95'))}"

    lines = [f"# sharpset audit ({cfg.size})", "", f"Non-inferiority margin {cfg.margin:g}; {result['holm']}; "
             f"seeds {result['seeds']}.", "",
             "| claim | paper (arXiv) | paper's figure | ours: diff [95% CI] | p (Holm) | n items (rows) | seeds | MDE | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in result["claims"]:
        p = c.get("paper") or {}
        ph = "-" if c.get("p") is None else f"{c['p']:.3g} ({c['p_holm']:.3g})"
        n = "-" if c.get("n") is None else f"{c['n']} ({c.get('n_rows')})"
        lines.append(f"| {c['claim']}. {c['title']} | {p.get('arxiv') or '-'} | {p.get('figure')} | {ours(c)} | {ph} | "
                     f"{n} | {c.get('seeds', '-')} | {_g(c.get('mde'))} | {c['verdict_text']} |")
    for c in result["claims"]:
        lines += ["", f"## {c['claim']}. {c['title']}", "", f"Verdict: **{c['verdict_text']}**."]
        if c.get("rule"):
            lines += ["", f"Rule: {c['rule']}."]
        if "pool_yield" in c and not c["pool_yield"]:
            lines += ["", "Pool yield: not measured (a given pool, not synthesised here)."]
        if c.get("pool_yield"):
            y = c["pool_yield"]
            lines += ["", f"Pool yield: {y['kept']} clean distinct rows of {y['attempts']} synth attempts = "
                          f"{y['rate']:.3f} {ci(y['ci95'])} (Wilson)."]
        if c["checks"]:
            lines += ["", "| comparison | decides | a | b | diff [95% CI] | p | p (Holm) | n (rows) | MDE | verdict |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for r in c["checks"]:
                x = r["comparison"] or {}
                lines.append(f"| {r['check']} | {'yes' if r['decides'] else 'no'} | {_g(x.get('a'))} | {_g(x.get('b'))} | "
                             f"{ours(x)} | "
                             f"{_g(x.get('p'))} | {_g(r.get('p_holm'))} | {x.get('n', '-')} ({x.get('n_rows', '-')}) | "
                             f"{_g(x.get('mde'))} | {r['verdict_text']} |")
    return "\n".join(lines) + "\n"
