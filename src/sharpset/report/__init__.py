"""``sharpset report RUNS... --out DIR``: what the examples bought, as one self-contained page.

Reads run folders (eval runs' ``summary.json`` + ``samples/<suite>.jsonl``, train runs'
``losses.jsonl``, every run's ``manifest.json``/``config.yaml``) or a pipeline folder holding
them, and writes into DIR:

- ``report.html``: one file, no network (a CSP forbids every load; plots are inline SVG; no
  script): a plain-words summary of what moved and what did not, the per-target effect table
  (paired 95% intervals, n, seeds, effect per training example), effect vs number of examples,
  invariance per wrapper family (trained vs held-out), answer-shape distributions, a token-shift
  view, loss curves with the share of answers that changed, answers side by side, the rows each
  curate gate dropped and the pseudo-refusals in each training set (:mod:`sharpset.report.selections`),
  the pipeline's counts with drop reasons, and each run's manifest; where a folder here is a sweep
  whose sweep.json pairs its cells with the random / quality-diversity cells of the same n and seed,
  one table per target of those comparisons (:mod:`sharpset.report.baselines`). All text from data
  is escaped.
- ``report.md``: the same numbers as Markdown;
- ``effects.json``: the effect table's rows (for notes and scripts);
- ``proxy.json``: where eval runs here used ``--engine proxy``, the proxy-tuning table -- base, expert
  alone, proxy per alpha, the base tuned directly, paired on the same items, with the share of the
  gap closed and knowledge kept (:mod:`sharpset.report.proxy`);
- ``audit.html``: where a folder here is a ``sharpset run audit`` folder, its audit page -- the verdict
  table, then one section per claim with its evidence (:mod:`sharpset.report.audit`).

Which eval model was trained on which train run: see :mod:`sharpset.report.collect` (``plan.json``).
Dataset cards: :func:`sharpset.report.cards.write_card` / :func:`~sharpset.report.cards.card_all`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .browser import screenshot  # noqa: F401 -- public: quickstart puts a screenshot in its run folder


def build_report(runs: list[str | Path], out: str | Path, *, plan: str | Path | None = None,
                 title: str | None = None) -> dict[str, Any]:
    """Write report.html, report.md and effects.json into ``out``; return their paths and figures."""
    from ..dataio import write_json, write_text
    from . import audit, html, markdown, proxy
    from .collect import collect, effect_rows

    col = collect(list(runs), plan)
    if title:
        col.title = title
    out = Path(out)
    rows = effect_rows(col)
    proxy_tables = proxy.tables(col)  # computed once for the three files
    write_text(out / "report.html", html.page(col, proxy_tables))
    write_text(out / "report.md", markdown.page(col, proxy_tables))
    write_json(out / "effects.json", rows)
    res = {"html": str(out / "report.html"), "markdown": str(out / "report.md"), "effects": str(out / "effects.json")}
    if proxy_tables:
        write_json(out / "proxy.json", proxy_tables)
        res["proxy"] = str(out / "proxy.json")
    res["audit"] = audit.write_pages(runs, out)  # the audit page, where a folder here is an audit's
    return {**res, "proxy_tables": len(proxy_tables), "runs": len(col.runs), "tuned_models": len(col.tuned),
            "moved": sum(r["verdict"] in ("better", "worse", "up", "down") for r in rows),
            "null": sum(r["verdict"] == "null" for r in rows)}


def cmd_report(args: argparse.Namespace) -> int:
    res = build_report(args.runs, args.out, plan=args.plan, title=args.title)
    print(f"{res['runs']} run folders, {res['tuned_models']} tuned models: {res['moved']} paired metrics moved, "
          f"{res['null']} null")
    if res.get("proxy"):
        print(f"proxy-tuning: {res['proxy_tables']} table(s) (base, expert, proxy per alpha, tuned directly; "
              f"share of the gap closed, knowledge kept) in report.md and {res['proxy']}")
    for page in res["audit"]:
        print(f"audit page: {page}")
    if args.screenshot:
        print(f"screenshot: {screenshot(res['html'], Path(args.out) / 'report.png')}")
        for page in res["audit"]:
            print(f"screenshot: {screenshot(page, Path(page).with_suffix('.png'))}")
    print(f"report: {res['html']}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="one self-contained report.html (+ report.md) from eval/train/stage run folders",
                       description="What the examples bought, as one self-contained page: report.html (no network, "
                                   "inline SVG plots, all data text escaped), report.md and effects.json.")
    p.add_argument("runs", nargs="+", metavar="RUNS", help="run folders, or folders holding them (walked)")
    p.add_argument("--out", required=True, help="folder for report.html, report.md and effects.json")
    p.add_argument("--plan", default=None, help="plan.json naming each tuned model's train run, target and size "
                                                "(default: any plan.json found in RUNS)")
    p.add_argument("--title", default=None, help="report title (default: the plan's, else a generic one)")
    p.add_argument("--screenshot", action="store_true", help="also save report.png (first screen, headless Chromium)")
    p.set_defaults(fn=cmd_report)
